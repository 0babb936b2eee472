import type { Micros } from '../../shared/quantity.js';
import type { CreditCost, Enforcement, FeatureType, OverageTerms } from '../catalog/index.js';
import type { Period, ResetPeriod } from '../../shared/periods.js';
import type { DimensionRule, RateLimit } from '../../shared/rate-window.js';

/** Why an account has, or lacks, access before any quantity is considered. */
export type AccessStatus = 'ENTITLED' | 'UNKNOWN_FEATURE' | 'NOT_ENTITLED' | 'CONTRACT_INACTIVE';

/**
 * The merged terms of one feature for one account at one instant (R4): the contract
 * side of every figure. Usage (`used`) and grants (`granted`) are added by their modules.
 * This is the interface the usage, grants, alerts and rating modules consume.
 */
export interface EffectiveTerms {
  accountId: string;
  feature: string;
  /** Null when the feature is not defined in the catalog. */
  featureType: FeatureType | null;
  access: AccessStatus;
  /** True only when access is ENTITLED. */
  hasAccess: boolean;
  /** Any contributing contract is PAST_DUE. */
  delinquent: boolean;
  enforcement: Enforcement;
  /** Sum over active contracts; null when any is unlimited (or for BOOLEAN features). */
  included: Micros | null;
  grace: Micros;
  /** The cheapest overage across contracts (R4), or null when none is priced. */
  overage: OverageTerms | null;
  thresholds: number[];
  config: unknown;
  resetPeriod: ResetPeriod;
  /** The usage period containing the instant; null for BOOLEAN features or no access. */
  period: Period | null;
  /** Counter document id for (account, feature, period); null when `period` is. */
  counterId: string | null;
  /** Contracts that contributed, oldest first. */
  contractIds: string[];
  currency: string | null;
  /** R13: a contributing contract marks this entitlement as a pool for descendants. */
  pooled?: boolean;
  /**
   * Set when these are a pool owner's terms drawn on by a member account (R13): every
   * other field is then the owner's (`accountId`, `counterId`, capacity, thresholds).
   */
  pool?: PoolDraw | null;
  /** R19: the merged rate limit (entitlements/rules.ts); absent or null when none. */
  rateLimit?: RateLimit | null;
  /** R20: rule sets, any one of which admits a request; absent or null when unrestricted. */
  allow?: DimensionRuleSet[] | null;
  /** R14: the merged entitlement burns credits of another feature (see `burn`). */
  credits?: CreditCost;
  /**
   * R14: set when these are the credit feature's terms (its counter, capacity, grants,
   * enforcement) drawn on by a burning feature: `feature` is then the credit feature.
   */
  burn?: CreditBurn | null;
}

/** One contributing contract's dimension rules (R20). */
export interface DimensionRuleSet {
  contractId: string;
  rules: DimensionRule[];
}

/** A burning feature's draw on its credit feature (R14). */
export interface CreditBurn {
  /** The burning feature, whose own units the request is in. */
  feature: string;
  /** The credit feature: `feature` of these terms. */
  creditFeature: string;
  /** Credit micro-units per unit of the burning feature. */
  perUnit: Micros;
}

/** A member's draw on an ancestor's pool (R13). */
export interface PoolDraw {
  /** The pool owner: `accountId` of these terms. */
  ownerId: string;
  /** The account that draws. */
  memberId: string;
  /** setAccountLimit: most this member may draw per period; null when uncapped. */
  limit: Micros | null;
}
