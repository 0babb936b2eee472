/**
 * Burn order (R5) as pure functions over stored facts: the usage counters' hour buckets
 * and the grants. Nothing here is stored; the same inputs always give the same burn, so
 * any figure can be recomputed and explained later.
 *
 * The rule, period by period in chronological order (a grant's balance carries over):
 * within a period, hour by hour, each hour's usage burns the period's included amount
 * first, then the grants whose window covers that hour, by priority ascending, then
 * earliest expiresAt (none last), then earliest effectiveAt, then creation. What neither
 * covers is UNCOVERED: overage, or grace under a HARD limit.
 *
 * An hour is split where a grant recorded an HourCut in it (issued or voided within the
 * hour): the first `units` of the bucket happened before the cut instant.
 */
import { minMicros, type Micros } from '../../shared/quantity.js';
import { hourStart } from '../../shared/counter-key.js';
import type { HourCut } from './model.js';
import { covers, HOUR_MS, isActiveAt, isEmptyWindow, type GrantWindow } from './window.js';

export interface BurnGrant {
  id: string;
  amount: Micros;
  priority: number;
  effectiveAt: Date;
  expiresAt: Date | null;
  issuedAt: Date;
  /** Where it burns. */
  window: GrantWindow;
  /** Where decisions may count on it, when narrower (see decisionWindow); default: `window`. */
  decisionWindow?: GrantWindow;
  /** This grant's cuts (start, void); they split the hour bucket for every grant. */
  cuts: HourCut[];
}

/** One usage period of one (account, feature): a counter document and its included amount. */
export interface BurnPeriod {
  counterId: string;
  start: Date;
  end: Date | null;
  /** Null: unlimited, everything is included and no grant burns. */
  included: Micros | null;
  /** Micro-units per UTC hour, keyed by hourKey(). */
  hours: Readonly<Record<string, Micros>>;
}

export type BurnSource = 'INCLUDED' | 'GRANT' | 'UNCOVERED';

/** "This source covered `units` of the usage between `from` and `to`." */
export interface BurnLine {
  source: BurnSource;
  grantId: string | null;
  from: Date;
  to: Date;
  units: Micros;
}

export interface PeriodBurn {
  counterId: string;
  start: Date;
  end: Date | null;
  included: Micros | null;
  used: Micros;
  includedBurned: Micros;
  uncovered: Micros;
  /** Balance when the period began, for each grant whose window overlaps it. */
  availableAtStart: Map<string, Micros>;
  /** Units each grant burned in this period (grants that burned nothing are absent). */
  burned: Map<string, Micros>;
  /** In time order, consecutive lines of one source merged. */
  lines: BurnLine[];
}

export interface BurnLedger {
  /** Chronological. */
  periods: PeriodBurn[];
  /** Units each grant burned over all the periods given. */
  burned: Map<string, Micros>;
}

/** R5's order: priority, then earliest expiry (none last), then earliest effectiveAt, then creation. */
export function compareBurnOrder(a: BurnGrant, b: BurnGrant): number {
  return (
    a.priority - b.priority ||
    (a.expiresAt?.getTime() ?? Infinity) - (b.expiresAt?.getTime() ?? Infinity) ||
    a.effectiveAt.getTime() - b.effectiveAt.getTime() ||
    a.issuedAt.getTime() - b.issuedAt.getTime() ||
    (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
  );
}

interface Slice {
  from: number;
  to: number;
  units: Micros;
}

/**
 * An hour bucket of a period as slices: the part of the hour inside the period, split at
 * every cut recorded in it. A cut's units are clamped so the slices always sum to the
 * bucket (a reconciliation may have lowered it since).
 */
export function hourSlices(key: string, units: Micros, period: Pick<BurnPeriod, 'start' | 'end'>, cuts: readonly HourCut[]): Slice[] {
  const hour = hourStart(key).getTime();
  const from = Math.max(hour, period.start.getTime());
  const to = Math.min(hour + HOUR_MS, period.end?.getTime() ?? Infinity);
  const inside = cuts.filter((cut) => cut.at.getTime() > from && cut.at.getTime() < to).sort((a, b) => a.at.getTime() - b.at.getTime());
  const slices: Slice[] = [];
  let at = from;
  let counted = 0n;
  for (const cut of inside) {
    const upTo = minMicros(units, cut.units > counted ? cut.units : counted);
    slices.push({ from: at, to: cut.at.getTime(), units: upTo - counted });
    at = cut.at.getTime();
    counted = upTo;
  }
  slices.push({ from: at, to, units: units - counted });
  return slices.filter((slice) => slice.units > 0n);
}

function overlaps(window: GrantWindow, period: Pick<BurnPeriod, 'start' | 'end'>): boolean {
  const startsBeforeEnd = period.end === null || window.start.getTime() < period.end.getTime();
  const endsAfterStart = window.end === null || window.end.getTime() > period.start.getTime();
  return startsBeforeEnd && endsAfterStart && (window.end === null || window.end > window.start);
}

function pushLine(lines: BurnLine[], line: BurnLine): void {
  const last = lines.at(-1);
  if (last && last.source === line.source && last.grantId === line.grantId) {
    lines[lines.length - 1] = { ...last, to: line.to, units: last.units + line.units };
  } else {
    lines.push(line);
  }
}

/**
 * Burns the usage of `periods` (any order; processed chronologically) against the
 * included amounts and `grants`, whose balances start at their full amount. Callers pass
 * every grant whose window overlaps the periods' span (see clustersOf): grants that never
 * share an hour with each other cannot influence each other's burn.
 */
export function simulateBurn(grants: readonly BurnGrant[], periods: readonly BurnPeriod[]): BurnLedger {
  const ordered = [...grants].sort(compareBurnOrder);
  const cuts = grants.flatMap((grant) => grant.cuts);
  const balance = new Map(grants.map((grant) => [grant.id, grant.amount]));
  const total = new Map<string, Micros>();
  const results: PeriodBurn[] = [];

  for (const period of [...periods].sort((a, b) => a.start.getTime() - b.start.getTime())) {
    const periodCuts = cuts.filter((cut) => cut.at >= period.start && (period.end === null || cut.at < period.end));
    const result: PeriodBurn = {
      counterId: period.counterId,
      start: period.start,
      end: period.end,
      included: period.included,
      used: 0n,
      includedBurned: 0n,
      uncovered: 0n,
      availableAtStart: new Map(
        ordered.filter((grant) => overlaps(grant.window, period)).map((grant) => [grant.id, balance.get(grant.id)!]),
      ),
      burned: new Map(),
      lines: [],
    };
    let includedLeft = period.included;
    for (const key of Object.keys(period.hours).sort()) {
      for (const slice of hourSlices(key, period.hours[key]!, period, periodCuts)) {
        const from = new Date(slice.from);
        const to = new Date(slice.to);
        let left = slice.units;
        result.used += left;
        const fromIncluded = includedLeft === null ? left : minMicros(left, includedLeft);
        if (fromIncluded > 0n) {
          if (includedLeft !== null) includedLeft -= fromIncluded;
          left -= fromIncluded;
          result.includedBurned += fromIncluded;
          pushLine(result.lines, { source: 'INCLUDED', grantId: null, from, to, units: fromIncluded });
        }
        for (const grant of ordered) {
          if (left === 0n) break;
          const available = balance.get(grant.id)!;
          if (available === 0n || !covers(grant.window, slice.from, slice.to)) continue;
          const take = minMicros(left, available);
          balance.set(grant.id, available - take);
          left -= take;
          result.burned.set(grant.id, (result.burned.get(grant.id) ?? 0n) + take);
          total.set(grant.id, (total.get(grant.id) ?? 0n) + take);
          pushLine(result.lines, { source: 'GRANT', grantId: grant.id, from, to, units: take });
        }
        if (left > 0n) {
          result.uncovered += left;
          pushLine(result.lines, { source: 'UNCOVERED', grantId: null, from, to, units: left });
        }
      }
    }
    results.push(result);
  }
  return { periods: results, burned: total };
}

/** Units a grant burned in periods that started before `periodStart`. */
export function burnedBefore(ledger: BurnLedger, grantId: string, periodStart: Date): Micros {
  let sum = 0n;
  for (const period of ledger.periods) {
    if (period.start.getTime() < periodStart.getTime()) sum += period.burned.get(grantId) ?? 0n;
  }
  return sum;
}

/** Units a grant burned in the period that starts at `periodStart`. */
export function burnedIn(ledger: BurnLedger, grantId: string, periodStart: Date): Micros {
  return ledger.periods.find((period) => period.start.getTime() === periodStart.getTime())?.burned.get(grantId) ?? 0n;
}

/**
 * How a grant can add to the capacity of `period` at instant `at` (R5):
 * - ACTIVE (its decision window holds `at`): its amount less what it burned in earlier
 *   periods;
 * - CLOSED (it started by `at` but no longer counts, its burn window reaching into this
 *   period: expired, voided): what it burned in this period, so the units it already
 *   covered stay covered ("past burn stays") and an expiry never turns them into overage;
 * - null: not started yet, or over before the period began: nothing.
 */
export function standingIn(
  grant: Pick<BurnGrant, 'window' | 'decisionWindow'>,
  period: { start: Date; end: Date | null },
  at: Date,
): 'ACTIVE' | 'CLOSED' | null {
  const decision = grant.decisionWindow ?? grant.window;
  if (!isEmptyWindow(decision) && isActiveAt(decision, at)) return 'ACTIVE';
  const { start, end } = grant.window;
  if (isEmptyWindow(grant.window) || start.getTime() > at.getTime()) return null;
  return end === null || end.getTime() > period.start.getTime() ? 'CLOSED' : null;
}

/** What a grant adds to the capacity of `period` at `at`; see standingIn. */
export function grantedInPeriod(
  grant: Pick<BurnGrant, 'id' | 'amount' | 'window' | 'decisionWindow'>,
  period: { start: Date; end: Date | null },
  at: Date,
  ledger: BurnLedger | null,
): Micros {
  const standing = standingIn(grant, period, at);
  if (standing === 'ACTIVE') {
    const before = ledger ? burnedBefore(ledger, grant.id, period.start) : 0n;
    return grant.amount > before ? grant.amount - before : 0n;
  }
  if (standing === 'CLOSED') return ledger ? burnedIn(ledger, grant.id, period.start) : 0n;
  return 0n;
}

/**
 * Groups windows that overlap into clusters. Grants of different clusters never cover the
 * same slice of usage, and included amounts burn first whatever the grants, so a cluster's
 * burn depends only on its own grants and the counters inside its span.
 */
export function clustersOf<G extends { window: GrantWindow }>(grants: readonly G[]): Array<{ start: Date; end: Date | null; grants: G[] }> {
  const live = grants.filter((grant) => grant.window.end === null || grant.window.end > grant.window.start);
  const sorted = [...live].sort((a, b) => a.window.start.getTime() - b.window.start.getTime());
  const clusters: Array<{ start: Date; end: Date | null; grants: G[] }> = [];
  for (const grant of sorted) {
    const current = clusters.at(-1);
    if (current && (current.end === null || grant.window.start < current.end)) {
      current.grants.push(grant);
      if (current.end !== null && (grant.window.end === null || grant.window.end > current.end)) current.end = grant.window.end;
    } else {
      clusters.push({ start: grant.window.start, end: grant.window.end, grants: [grant] });
    }
  }
  return clusters;
}
