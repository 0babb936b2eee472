/**
 * The catalog module (R1, R2): features and versioned plans, with the validation of
 * entitlement terms that contracts reuse for overrides. Other modules read it through
 * `CatalogReads`; writes are `defineFeature` and `publishPlan`, audited.
 */
import type { Db } from 'mongodb';
import type { AuditLog } from '../audit/index.js';
import { AddOnCatalog } from './add-ons.js';
import { CatalogRepository } from './repository.js';
import { CatalogService } from './service.js';

export function createCatalog(db: Db, audit: AuditLog): CatalogService {
  const repository = new CatalogRepository(db);
  return new CatalogService(repository, audit, new AddOnCatalog(db, audit, (keys) => repository.findFeatures(keys)));
}

export { addOnIndexes, addOnVersionId, type AddOnInputShape, type AddOnVersionDoc } from './add-ons.js';

export { catalogIndexes } from './repository.js';
export type { CatalogReads, CatalogService, FeatureInputShape, PlanInputShape } from './service.js';
export { createCatalogLoaders, type CatalogLoaders } from './loaders.js';
export {
  DEFAULT_THRESHOLDS,
  planVersionId,
  type CreditCost,
  type Enforcement,
  type EntitlementTerms,
  type FeatureDoc,
  type FeatureType,
  hasQuantities,
  type OverageTerms,
  type PlanVersionDoc,
  type PriceTier,
  type PricingModel,
  type Rounding,
  type DimensionRule,
  type RateLimit,
  type RateWindow,
} from './model.js';
export { assertCreditLinks, withOverrides, type CreditCostInputShape } from './credits.js';
export {
  assertOverageCurrency,
  isTiered,
  marginalUnitPrice,
  overageComparisonPrice,
  overageFromStored,
  tierIndexAt,
} from './tiers.js';
export { KEY_PATTERN, parseKey, parseOverride, type OverrideInputShape } from './validation.js';
