/**
 * Decisions and figures from effective terms plus the two numbers other modules own:
 * `used` (usage counters) and `granted` (credit grants). Pure functions: the usage module
 * calls `decide` and `hardCeiling` at its enforcement point, the GraphQL layer formats.
 */
import { maxMicros, type Micros } from '../../shared/quantity.js';
import { type Enforcement, hasQuantities, marginalUnitPrice } from '../catalog/index.js';
import type { EffectiveTerms } from './model.js';

export type DecisionReason =
  | 'INCLUDED'
  | 'WITHIN_GRANTS'
  | 'WITHIN_GRACE'
  | 'OVERAGE'
  | 'QUOTA_EXCEEDED'
  | 'NOT_ENTITLED'
  | 'CONTRACT_INACTIVE'
  | 'UNKNOWN_FEATURE'
  /** R16: a gauge's decrease that would take its level below zero (refused, not clamped). */
  | 'LEVEL_BELOW_ZERO'
  | 'RATE_LIMITED'
  | 'DIMENSION_NOT_ALLOWED';

export interface Decision {
  allowed: boolean;
  reason: DecisionReason;
  requested: Micros;
  /** Used in the period before this request. */
  used: Micros;
  /** included + granted; null when unlimited (or BOOLEAN), 0 without access. */
  capacity: Micros | null;
  /** max(0, capacity − used) before this request; null when capacity is. */
  remaining: Micros | null;
  enforcement: Enforcement;
  /** Units of this request beyond capacity that would be counted (0 when denied). */
  overageUnits: Micros;
  periodStart: Date | null;
  periodEnd: Date | null;
  delinquent: boolean;
  /** RATE_LIMITED: when the window ends (R19). */
  retryAfter?: Date | null;
}

/** capacity = included + granted (R5); null when unlimited or not metered. */
export function capacityOf(terms: EffectiveTerms, granted: Micros): Micros | null {
  if (!terms.hasAccess) return hasQuantities(terms.featureType) ? 0n : null;
  if (!hasQuantities(terms.featureType) || terms.included === null) return null;
  return terms.included + granted;
}

/**
 * The most a HARD-enforced counter may hold after a request: capacity + grace (R6).
 * Null when nothing caps usage (SOFT, NONE, unlimited or BOOLEAN); the usage module puts
 * this in its guarded `$inc` filter.
 */
export function hardCeiling(terms: EffectiveTerms, granted: Micros): Micros | null {
  const capacity = capacityOf(terms, granted);
  if (!terms.hasAccess) return 0n;
  if (capacity === null || terms.enforcement !== 'HARD') return null;
  return capacity + terms.grace;
}

/**
 * Whether `requested` more units may be used now, and why (R4, R6):
 * INCLUDED when used + requested fits in the included amount; WITHIN_GRANTS when it fits
 * in capacity only thanks to grants; beyond capacity, HARD gives WITHIN_GRACE up to
 * capacity + grace and QUOTA_EXCEEDED after, SOFT and NONE give OVERAGE (allowed).
 * BOOLEAN and unlimited features give INCLUDED when there is access.
 */
export function decide(terms: EffectiveTerms, used: Micros, granted: Micros, requested: Micros): Decision {
  const capacity = capacityOf(terms, granted);
  const base = {
    requested,
    used,
    capacity,
    remaining: capacity === null ? null : maxMicros(0n, capacity - used),
    enforcement: terms.enforcement,
    overageUnits: 0n,
    periodStart: terms.period?.start ?? null,
    periodEnd: terms.period?.end ?? null,
    delinquent: terms.delinquent,
  };
  if (!terms.hasAccess) {
    return { ...base, allowed: false, reason: terms.access as Exclude<EffectiveTerms['access'], 'ENTITLED'> };
  }
  if (capacity === null || terms.included === null) return { ...base, allowed: true, reason: 'INCLUDED' };

  const after = used + requested;
  if (after <= terms.included) return { ...base, allowed: true, reason: 'INCLUDED' };
  if (after <= capacity) return { ...base, allowed: true, reason: 'WITHIN_GRANTS' };
  // Only the part of this request past capacity is overage; earlier overage was counted before.
  const overageUnits = after - maxMicros(used, capacity);
  if (terms.enforcement === 'HARD') {
    return after <= capacity + terms.grace
      ? { ...base, allowed: true, reason: 'WITHIN_GRACE', overageUnits }
      : { ...base, allowed: false, reason: 'QUOTA_EXCEEDED' };
  }
  return { ...base, allowed: true, reason: 'OVERAGE', overageUnits };
}

/** The figures of SPEC's `Entitlement` type, still in micro-units; the resolvers format them. */
export interface EntitlementView {
  terms: EffectiveTerms;
  used: Micros;
  granted: Micros;
  capacity: Micros | null;
  remaining: Micros | null;
  overage: Micros;
  /** used ÷ capacity × 100, rounded down to 4 decimals; null when unlimited or capacity is 0. */
  percentUsed: number | null;
  /**
   * The price of the next billable unit, exact: unitPrice ÷ per; with tiers (R15) the unit
   * price of the tier the next billable unit (beyond capacity) falls in.
   */
  overagePrice: string | null;
  /** This account's own draw when pooled (R13); `used` otherwise. */
  accountUsed?: Micros;
}

export function buildEntitlementView(terms: EffectiveTerms, used: Micros, granted: Micros, accountUsed?: Micros): EntitlementView {
  const capacity = capacityOf(terms, granted);
  const limited = terms.hasAccess && capacity !== null;
  return {
    terms,
    used,
    granted,
    capacity,
    remaining: capacity === null ? null : limited ? maxMicros(0n, capacity - used) : 0n,
    overage: limited ? maxMicros(0n, used - capacity) : 0n,
    // Integer arithmetic to the last step: the Float is produced at the edge only.
    percentUsed: limited && capacity > 0n ? Number((used * 1_000_000n) / capacity) / 10_000 : null,
    overagePrice: terms.overage ? marginalUnitPrice(terms.overage, limited ? maxMicros(0n, used - capacity) : 0n).toFixed() : null,
    ...(accountUsed !== undefined && accountUsed !== used ? { accountUsed } : {}),
  };
}
