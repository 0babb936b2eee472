/**
 * R19 and R20 across contracts (R4), and the check-side decisions they add. Pure.
 *
 * Merge rules, like the rest of R4 they favour the customer:
 * - rate limit: none when any contributing contract has none (as unlimited `included`
 *   wins); otherwise the most generous, i.e. the highest rate (limit ÷ window length),
 *   the oldest contract's on a tie. Limits are never summed: windows of different
 *   lengths do not add up to one window.
 * - allow rules: each contributing contract with rules gives one rule set and a request
 *   needs to satisfy only one of them (access if any contract's rules allow it); any
 *   contributing contract without rules makes the entitlement unrestricted.
 */
import type { EntitlementTerms } from '../catalog/index.js';
import { type DimensionRule, dimensionsAllowed, type RateLimit, rateWindowId, WINDOW_MS, windowAt } from '../../shared/rate-window.js';
import type { Micros } from '../../shared/quantity.js';
import type { DimensionRuleSet, EffectiveTerms } from './model.js';

export function mergeRateLimit(all: readonly EntitlementTerms[]): RateLimit | null {
  let best: RateLimit | null = null;
  for (const terms of all) {
    const limit = terms.rateLimit ?? null;
    if (limit === null) return null;
    // a/wa > b/wb  <=>  a·wb > b·wa, exact in bigint.
    if (best === null || limit.limit * BigInt(WINDOW_MS[best.window]) > best.limit * BigInt(WINDOW_MS[limit.window])) best = limit;
  }
  return best;
}

export function mergeAllow(contributing: ReadonlyArray<{ contractId: string; terms: EntitlementTerms }>): DimensionRuleSet[] | null {
  const sets: DimensionRuleSet[] = [];
  for (const { contractId, terms } of contributing) {
    const rules: DimensionRule[] = terms.allow ?? [];
    if (rules.length === 0) return null;
    sets.push({ contractId, rules });
  }
  return sets;
}

/** Whether the request's properties let these terms apply (R20). */
export function termsApply(terms: EffectiveTerms, properties: unknown): boolean {
  return dimensionsAllowed(
    terms.allow?.map((set) => set.rules),
    properties,
  );
}

/** A rate window as read for a check: units counted in the window containing the instant. */
export interface RateWindowState {
  count: Micros;
  end: Date;
}

/** R19 for a check: whether `requested` fits in the window now; `retryAfter` when it does not. */
export function rateFits(
  limit: RateLimit,
  state: RateWindowState | null,
  requested: Micros,
  at: Date,
): { fits: boolean; retryAfter: Date } {
  const end = state?.end ?? windowAt(limit.window, at).end;
  return { fits: (state?.count ?? 0n) + requested <= limit.limit, retryAfter: end };
}

/** One read of every rate window the checks need (R19); empty when none is rate limited. */
export async function readRateWindows(
  counters: { rateWindows?(ids: readonly string[]): Promise<Map<string, RateWindowState>> },
  requests: ReadonlyArray<{ accountId: string; feature: string }>,
  states: ReadonlyArray<{ terms: EffectiveTerms }>,
  at: Date,
): Promise<Map<string, RateWindowState>> {
  const ids = states.flatMap(({ terms }, i) => (terms.rateLimit && terms.hasAccess ? [windowIdOf(terms.rateLimit, requests[i]!, at)] : []));
  if (ids.length === 0 || !counters.rateWindows) return new Map();
  return counters.rateWindows([...new Set(ids)]);
}

/** The window a request of this account counts in: the account's own, even when it draws on a pool (R13). */
export function windowIdOf(limit: RateLimit, request: { accountId: string; feature: string }, at: Date): string {
  return rateWindowId(request.accountId, request.feature, limit.window, windowAt(limit.window, at).start);
}

/**
 * A check's refusal by R20 or R19, or null to decide on the quota. Access comes first: a
 * request without access keeps its access reason.
 */
export function ruleDecision(
  terms: EffectiveTerms,
  request: { accountId: string; feature: string; requested: Micros; properties?: unknown },
  windows: ReadonlyMap<string, RateWindowState>,
  at: Date,
): { allowed: false; reason: 'DIMENSION_NOT_ALLOWED' | 'RATE_LIMITED'; overageUnits: 0n; retryAfter: Date | null } | null {
  if (!terms.hasAccess) return null;
  if (!termsApply(terms, request.properties))
    return { allowed: false, reason: 'DIMENSION_NOT_ALLOWED', overageUnits: 0n, retryAfter: null };
  if (!terms.rateLimit) return null;
  const { fits, retryAfter } = rateFits(
    terms.rateLimit,
    windows.get(windowIdOf(terms.rateLimit, request, at)) ?? null,
    request.requested,
    at,
  );
  return fits ? null : { allowed: false, reason: 'RATE_LIMITED', overageUnits: 0n, retryAfter };
}
