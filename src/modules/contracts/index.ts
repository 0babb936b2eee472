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

export function createContracts(deps: {
  db: Db;
  catalog: CatalogReads;
  audit: AuditLog;
  events: EventPublisher<ContractEvents>;
  logger: Logger;
  /** R18: the trial settler that a read seeing a trial end due or owed triggers. */
  trials?: TrialSettler;
}): ContractService {
  return new ContractService({ ...deps, repository: new ContractRepository(deps.db), trialDue: (id) => deps.trials?.due(id) });
}

/** R18: stores and announces trial ends (TrialEnded); a background pass every `intervalMs`, and on demand. */
export function createTrialSettler(deps: {
  db: Db;
  audit: AuditLog;
  events: EventPublisher<TrialEvents>;
  logger: Logger;
  intervalMs: number;
}): TrialSettler {
  return new TrialSettler({ ...deps, repository: new ContractRepository(deps.db) });
}

/** R17: attaching and detaching add-ons, audited and announced as TermsChanged. */
export function createContractAddOns(deps: {
  db: Db;
  catalog: CatalogReads;
  audit: AuditLog;
  events: EventPublisher<ContractEvents>;
  logger: Logger;
}): ContractAddOns {
  return new ContractAddOns({ ...deps, repository: new ContractRepository(deps.db) });
}

export { addOnsAt, type ContractAddOns } from './add-ons.js';
export { settleTrial, TRIAL_PASS_COMMENT, trialInterval, type TrialEnded, type TrialEvents, type TrialSettler } from './trials.js';

export { contractIndexes } from './repository.js';
export type { ContractBilling, ContractEvents, ContractInputShape, ContractReads, ContractService } from './service.js';
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
