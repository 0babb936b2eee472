import type { Micros } from '../../shared/quantity.js';
import type { ResetPeriod } from '../../shared/periods.js';
import type { DimensionRule, RateLimit } from '../../shared/rate-window.js';

export type { DimensionRule, RateLimit, RateWindow } from '../../shared/rate-window.js';

export type FeatureType = 'BOOLEAN' | 'METERED' | 'GAUGE';

/** METERED sums usage per period; GAUGE measures a level (R16). Both carry quantity terms. */
export function hasQuantities(type: FeatureType | null | undefined): boolean {
  return type === 'METERED' || type === 'GAUGE';
}
export type Enforcement = 'HARD' | 'SOFT' | 'NONE';
export type Rounding = 'UP' | 'EXACT';
/** R15: PER_UNIT is blocks of `per` at `unitPrice`; the tiered models follow Stripe (docs/pricing.md). */
export type PricingModel = 'PER_UNIT' | 'GRADUATED' | 'VOLUME';

/** One price tier (R15): units up to and including `upTo` (null: no bound, the last tier). */
export interface PriceTier {
  /** Micro-units; null only on the last tier. */
  upTo: Micros | null;
  /** Exact money string: the price of one unit in this tier. */
  unitPrice: string;
  /** Exact money string on the currency's minor unit: charged once when the tier is reached. */
  flatFee: string;
}

export interface FeatureDoc {
  /** The feature key, `^[a-z][a-z0-9_]{0,63}$` (R1). */
  _id: string;
  name: string;
  type: FeatureType;
  unit: string | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface OverageTerms {
  /** Exact money string: the price of one block of `per` units. */
  unitPrice: string;
  /** Block size in micro-units (e.g. 1,000 units for "$0.20 per 1,000"). */
  per: Micros;
  rounding: Rounding;
  /**
   * R15: GRADUATED or VOLUME with `tiers`; absent means PER_UNIT (every document written
   * before tiers existed). With tiers, `unitPrice` holds the first tier's unit price and
   * `per` is one unit, so readers unaware of tiers still see a sane price.
   */
  model?: Exclude<PricingModel, 'PER_UNIT'>;
  tiers?: PriceTier[];
}

/** One feature's terms in a plan version, or after an override is applied. */
export interface EntitlementTerms {
  feature: string;
  enabled: boolean;
  /** Null means unlimited. */
  included: Micros | null;
  resetPeriod: ResetPeriod;
  enforcement: Enforcement;
  grace: Micros;
  overage: OverageTerms | null;
  thresholds: number[];
  config: unknown;
  /**
   * R13: shared by every descendant account without an entitlement of its own for the
   * feature (docs/hierarchies.md). Absent on documents written before pools existed.
   */
  pooled?: boolean;
  /** R19: at most `limit` units per fixed window; absent or null when not rate limited. */
  rateLimit?: RateLimit | null;
  /** R20: the entitlement applies only when a request's properties satisfy every rule; absent, null or empty: always. */
  allow?: DimensionRule[] | null;
  /**
   * R14: each unit of this feature burns `perUnit` units of the credit feature, on the
   * credit feature's counter (docs/credits.md). Absent when the feature is not credit-based.
   */
  credits?: CreditCost | null;
}

/** A credit cost (R14): `perUnit` micro-units of the credit `feature` per unit. */
export interface CreditCost {
  feature: string;
  perUnit: Micros;
}

export interface PlanVersionDoc {
  /** `${key}@${version}` */
  _id: string;
  key: string;
  version: number;
  name: string;
  currency: string;
  /** Exact money string per billing period, or null when the plan has no base fee. */
  baseFee: string | null;
  billingPeriod: ResetPeriod;
  /** R15: the per-period floor (exact money string); absent or null when the plan has none. */
  minimumCommit?: string | null;
  entitlements: EntitlementTerms[];
  publishedAt: Date;
  publishedBy: string;
}

export const DEFAULT_THRESHOLDS: readonly number[] = [80, 90, 100];

/** A plan version's id: `key@version`. */
export function planVersionId(key: string, version: number): string {
  return `${key}@${version}`;
}
