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
import { ContractAddOns } from './add-ons.js';
import { ContractRepository } from './repository.js';
import { type ContractEvents, ContractService } from './service.js';
import { type TrialEvents, TrialSettler } from './trials.js';
import { ContractTermsCache, type TermsCacheOptions } from './terms-cache.js';

/**
 * The instance's cache of contracts for the hot path (terms-cache.ts). Pass the same one
 * to every factory below: each write path tells it of its writes.
 */
export function createContractTermsCache(deps: { db: Db; logger: Logger } & TermsCacheOptions): ContractTermsCache {
  return new ContractTermsCache(new ContractRepository(deps.db).collection, deps.logger, deps);
}

export function createContracts(deps: {
  db: Db;
  catalog: CatalogReads;
  audit: AuditLog;
  events: EventPublisher<ContractEvents>;
  logger: Logger;
  /** R18: the trial settler that a read seeing a trial end due or owed triggers. */
  trials?: TrialSettler;
  termsCache?: ContractTermsCache;
}): ContractService {
  return new ContractService({
    ...deps,
    repository: new ContractRepository(deps.db, deps.termsCache),
    trialDue: (id) => deps.trials?.due(id),
  });
}

/** R18: stores and announces trial ends (TrialEnded); a background pass every `intervalMs`, and on demand. */
export function createTrialSettler(deps: {
  db: Db;
  audit: AuditLog;
  events: EventPublisher<TrialEvents>;
  logger: Logger;
  intervalMs: number;
  termsCache?: ContractTermsCache;
}): TrialSettler {
  return new TrialSettler({ ...deps, repository: new ContractRepository(deps.db, deps.termsCache) });
}

/** R17: attaching and detaching add-ons, audited and announced as TermsChanged. */
export function createContractAddOns(deps: {
  db: Db;
  catalog: CatalogReads;
  audit: AuditLog;
  events: EventPublisher<ContractEvents>;
  logger: Logger;
  termsCache?: ContractTermsCache;
}): ContractAddOns {
  return new ContractAddOns({ ...deps, repository: new ContractRepository(deps.db, deps.termsCache) });
}

export { addOnsAt, type ContractAddOns } from './add-ons.js';
export { settleTrial, TRIAL_PASS_COMMENT, trialInterval, type TrialEnded, type TrialEvents, type TrialSettler } from './trials.js';

export { contractIndexes } from './repository.js';
export { type ContractTermsCache, TERMS_FEED_COMMENT } from './terms-cache.js';
export type {
  ContractBilling,
  ContractEvents,
  ContractInputShape,
  ContractReads,
  ContractService,
  ContractTermsReads,
} from './service.js';
export { createContractLoaders, type ContractLoaders } from './loaders.js';
export {
  compareOldestFirst,
  type AccountRef,
  type AddOnSegment,
  type TrialConversion,
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
