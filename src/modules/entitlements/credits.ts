/**
 * Credit-based entitlements (R14), as pure functions. A burning feature (gpt_large,
 * `credits: {feature: ai_credits, perUnit: 2.5}`) is enforced with its credit feature's
 * terms: the credit counter, capacity (included + grants), grace and enforcement. Usage
 * lands there as credits, and every figure shown for the burning feature is converted
 * back to its own units. Rounding: a burn rounds UP to the micro-credit (never under-
 * charged), a capacity in own units rounds DOWN (never promises more than the credits).
 */
import { MICROS_PER_UNIT, type Micros } from '../../shared/quantity.js';
import type { Decision, EntitlementView } from './decision.js';
import type { EffectiveTerms } from './model.js';

/** Credits burned by `units` of a feature at `perUnit` credits each, rounded up to the micro-credit. */
export function creditsFor(units: Micros, perUnit: Micros): Micros {
  const product = units * perUnit;
  return (product + MICROS_PER_UNIT - 1n) / MICROS_PER_UNIT;
}

/** Whole micro-units of the burning feature that `credits` pay for, rounded down. */
export function unitsFor(credits: Micros, perUnit: Micros): Micros {
  return credits <= 0n ? 0n : (credits * MICROS_PER_UNIT) / perUnit;
}

/** Whether an account's own terms burn credits and need their credit feature's terms. */
export function burnsCredits(terms: EffectiveTerms): boolean {
  return terms.hasAccess && terms.credits != null && !terms.pool;
}

/**
 * The credit feature's terms, marked as drawn on by the burning feature (R14). The balance
 * (counter, capacity, grace, enforcement) is the credit feature's; the request's own rules
 * stay the burning entitlement's: its rate limit (R19, counted in its own units, in its own
 * window) and its dimension rules (R20).
 */
export function burnTerms(own: EffectiveTerms, credit: EffectiveTerms): EffectiveTerms {
  const cost = own.credits!;
  return {
    ...credit,
    rateLimit: own.rateLimit ?? null,
    allow: own.allow ?? null,
    burn: { feature: own.feature, creditFeature: cost.feature, perUnit: cost.perUnit },
  };
}

/**
 * A decision taken in credits, answered in the burning feature's units: `used` is its
 * own usage, `remaining` the credits left ÷ perUnit, `capacity` = used + remaining.
 */
export function decisionInOwnUnits(decision: Decision, terms: EffectiveTerms, ownUsed: Micros, requested: Micros): Decision {
  const perUnit = terms.burn!.perUnit;
  const remaining = decision.remaining === null ? null : unitsFor(decision.remaining, perUnit);
  return {
    ...decision,
    requested,
    used: ownUsed,
    remaining,
    capacity: remaining === null ? null : ownUsed + remaining,
    overageUnits: unitsFor(decision.overageUnits, perUnit),
  };
}

/**
 * The burning feature's entitlement, from its credit feature's view: own usage, the
 * credits left in its units; included, granted and grace in its units too. Overage and
 * its price belong to the credit feature's entitlement, where they are billed.
 */
export function viewInOwnUnits(view: EntitlementView, ownUsed: Micros): EntitlementView {
  const burn = view.terms.burn!;
  const convert = (credits: Micros) => unitsFor(credits, burn.perUnit);
  const remaining = view.remaining === null ? null : convert(view.remaining);
  const capacity = remaining === null ? null : ownUsed + remaining;
  return {
    terms: {
      ...view.terms,
      feature: burn.feature,
      included: view.terms.included === null ? null : convert(view.terms.included),
      grace: convert(view.terms.grace),
    },
    used: ownUsed,
    granted: convert(view.granted),
    capacity,
    remaining,
    overage: 0n,
    percentUsed: capacity !== null && capacity > 0n ? Number((ownUsed * 1_000_000n) / capacity) / 10_000 : null,
    overagePrice: null,
  };
}
