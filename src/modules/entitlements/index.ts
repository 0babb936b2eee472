/**
 * The entitlements module (R4–R6): merged contract terms, the entitlement views and the
 * decisions of `checkEntitlement`. Terms come from the contracts and the catalog
 * (`TermsService`); balances add the usage module's counters and the grants module's
 * `granted` (`EntitlementService`), both passed in as ports by the composition root.
 */
export { TermsService, type TermsRequest, type TermsSources } from './terms.js';
export { EntitlementService, MAX_CHECKS, type CheckRequest, type EntitlementState, type UsageTotals } from './service.js';
export type { GrantedSource } from './granted.js';
export {
  capacityOf,
  decide,
  hardCeiling,
  type Decision,
  type DecisionReason,
  type EntitlementView,
} from './decision.js';
export type { AccessStatus, CreditBurn, EffectiveTerms, PoolDraw } from './model.js';
export { creditsFor, unitsFor } from './credits.js';
export { contractFeatures, contractTerms, mergeEffectiveTerms, planIdsNeeded, unitOveragePrice } from './merge.js';
export { createEntitlementLoaders, type ViewRequest } from './loaders.js';
export { termsApply } from './rules.js';
