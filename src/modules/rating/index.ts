/**
 * The rating module (R8, R12): invoice previews, finalising a period (which freezes it and
 * flags later usage there as late), and the billing export. It reads every other module
 * through its public face and writes only its invoices.
 */
import type { Db } from 'mongodb';
import { InvoiceRepository, UsageOwnerRepository } from './repository.js';
import { RatingService, type RatingServiceDeps } from './service.js';

export function createRating(deps: Omit<RatingServiceDeps, 'invoices' | 'usageOwners'> & { db: Db }): RatingService {
  const { db, ...rest } = deps;
  return new RatingService({ ...rest, invoices: new InvoiceRepository(db), usageOwners: new UsageOwnerRepository(db) });
}

export { invoiceIndexes } from './repository.js';
export type { RatingService, RatingServiceDeps } from './service.js';
export { grantCoverageFrom } from './grant-coverage.js';
export type { InvoiceLineView, InvoiceView, PendingCorrection, RatedUsage, RatingEvents } from './model.js';
export { toBillingExport } from './export.js';
export type { GrantBurn } from './overage.js';
export type { BillingExportView, BillingLineView } from './export.js';
