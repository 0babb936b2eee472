/**
 * The contracts module (R3): contracts synced from billing, each pinning a plan version,
 * with status, dates, plan history and per-feature overrides. Other modules read them
 * through `ContractReads`; every write is audited and publishes TermsChanged.
 */
import type { Db } from 'mongodb';
import type { Logger } from '../../logger.js';
import type { EventPublisher } from '../../shared/events.js';
import type { AuditLog } from '../audit/index.js';
import type { CatalogReads } from '../catalog/index.js';
import { ContractRepository } from './repository.js';
import { type ContractEvents, ContractService } from './service.js';

export function createContracts(deps: {
  db: Db;
  catalog: CatalogReads;
  audit: AuditLog;
  events: EventPublisher<ContractEvents>;
  logger: Logger;
}): ContractService {
  return new ContractService({ ...deps, repository: new ContractRepository(deps.db) });
}

export { contractIndexes } from './repository.js';
export type { ContractBilling, ContractEvents, ContractInputShape, ContractReads, ContractService } from './service.js';
export { createContractLoaders, type ContractLoaders } from './loaders.js';
export {
  compareOldestFirst,
  type AccountRef,
  type ContractDoc,
  type ContractStatus,
  type EntitlementOverride,
  type OverrideEntry,
  type PlanPin,
  type StatusChange,
} from './model.js';
export {
  asOf,
  billingEnd,
  canceledIntervals,
  isInForceAt,
  pinPlanId,
  pinsOf,
  planPinAt,
  statusAt,
  statusesOf,
  windowsOverlap,
} from './plan-history.js';
