import type { AuditLog } from '../audit/index.js';
import { creditsFor } from '../entitlements/index.js';
import { BadInputError, NotFoundError } from '../../shared/errors.js';
import { toMicros, type Micros } from '../../shared/quantity.js';
import { gaugeLevelId, memberKey } from '../../shared/counter-key.js';
import { counterId as counterIdOf, hourKey, type CounterDoc } from './counters.js';
import type { PostingDoc } from './model.js';
import type { UsageLedger } from './repository.js';
import { judge } from './sweeper.js';

export interface ReconciliationReport {
  counterId: string;
  accountId: string;
  feature: string;
  periodStart: Date;
  periodEnd: Date | null;
  /** `used` as found. */
  observed: Micros;
  /** The sum of the counter's accepted events. */
  expected: Micros;
  /** observed − expected: positive when the counter over-counted. */
  drift: Micros;
  /** Hour buckets whose total differed from their events'. */
  driftedHours: number;
  repaired: boolean;
  /** Postings still in flight; while there are any the counter is not repaired. */
  inFlight: number;
  acceptedEvents: number;
}

const MAX_ROUNDS = 5;

/**
 * Recomputes a counter from its events (R7's invariant: counter = sum of accepted events)
 * and repairs any drift with one atomic update guarded on the `used` it observed and an
 * empty `pending`, so a concurrent increment makes it re-read instead of losing usage.
 * The sum is done here rather than with $group: it needs each event's outcome, which
 * lives on its posting, and it keeps Int64 arithmetic exact whatever the server.
 */
export async function reconcileCounter(
  deps: { ledger: UsageLedger; audit: AuditLog; retentionDays: number },
  target: { accountId: string; feature: string; periodStart: Date },
  who: { actor: string; requestId: string | null },
): Promise<ReconciliationReport> {
  const { ledger } = deps;
  // Events are kept for the retention period only: an older period (allowing for the
  // 5-minute future skew) may have lost some, and recomputing it would erase real usage.
  const oldestComplete = Date.now() - deps.retentionDays * 86_400_000 + 5 * 60_000;
  if (target.periodStart.getTime() < oldestComplete) {
    throw new BadInputError(
      `The period starting ${target.periodStart.toISOString()} began before the ${deps.retentionDays}-day retention window: some of its events may have been deleted, so its counter cannot be recomputed from them.`,
      { field: 'periodStart' },
    );
  }
  if (await ledger.counter(gaugeLevelId(target.accountId, target.feature))) {
    throw new BadInputError(
      `Feature "${target.feature}" is a GAUGE: its level is kept by compare-and-set in one document (docs/gauges.md), not summed per period, so reconcileUsage does not apply to it.`,
      { field: 'feature' },
    );
  }
  const id = counterIdOf(target.accountId, target.feature, target.periodStart);
  // Every reconcileUsage call is audited (R10), also when nothing needed repairing.
  const checked = async (report: ReconciliationReport): Promise<ReconciliationReport> => {
    const { observed, expected, drift, driftedHours, inFlight, acceptedEvents } = report;
    await deps.audit.record({
      actor: who.actor,
      requestId: who.requestId,
      accountId: target.accountId,
      action: 'usage.reconcile_checked',
      targetType: 'UsageCounter',
      targetId: id,
      after: { observed, expected, drift, driftedHours, inFlight, acceptedEvents, repaired: false },
    });
    return report;
  };
  for (let round = 0; ; round++) {
    let counter = await ledger.counter(id);
    const postings = await ledger.postingsOfCounter(id);
    if (!counter && postings.length === 0) throw await notFound(ledger, target);
    if (counter && counter.pending.length > 0 && (await settleEntries(ledger, counter, postings))) counter = await ledger.counter(id);

    const inFlight = postings.filter((posting) => posting.state === 'RESERVED').length;
    const { expected, hours, members, burns, acceptedEvents } = await acceptedTotals(ledger, postings, target.accountId);
    const observed = counter ? toMicros(counter.used) : 0n;
    const driftedHours = countDriftedHours(counter?.hours ?? {}, hours);
    // A pool counter (R13) also holds each member's share: recomputed from their postings.
    const driftedMembers = countDriftedHours(counter?.members ?? {}, members) + countDriftedBurns(counter?.burns ?? {}, burns);
    const report: ReconciliationReport = {
      counterId: id,
      accountId: target.accountId,
      feature: target.feature,
      periodStart: target.periodStart,
      periodEnd: counter?.periodEnd ?? postings[0]?.period?.end ?? null,
      observed,
      expected,
      drift: observed - expected,
      driftedHours,
      repaired: false,
      inFlight,
      acceptedEvents,
    };
    if (inFlight > 0 || (report.drift === 0n && driftedHours === 0 && driftedMembers === 0) || !counter) return checked(report);

    // Guarded on the `used` observed and an empty `pending`: a concurrent increment makes
    // the repair fail and the next round re-read, instead of losing usage (R7's invariant).
    const pooled = counter.members !== undefined || Object.keys(members).length > 0;
    // A credit counter (R14) also holds each burning feature's own units.
    const burning = counter.burns !== undefined || Object.keys(burns).length > 0;
    if (await ledger.repairCounter(id, counter.used, expected, hours, pooled ? members : undefined, burning ? burns : undefined)) {
      await deps.audit.record({
        actor: who.actor,
        requestId: who.requestId,
        accountId: target.accountId,
        action: 'usage.reconciled',
        targetType: 'UsageCounter',
        targetId: id,
        before: {
          used: observed,
          hours: counter.hours,
          ...(pooled ? { members: counter.members ?? {} } : {}),
          ...(burning ? { burns: counter.burns ?? {} } : {}),
        },
        after: {
          used: expected,
          hours,
          drift: report.drift,
          acceptedEvents,
          ...(pooled ? { members } : {}),
          ...(burning ? { burns } : {}),
        },
      });
      return { ...report, repaired: true };
    }
    if (round + 1 >= MAX_ROUNDS) return checked(report);
  }
}

/** Pulls settled entries and undoes stale ones, as the sweeper would; true if any changed. */
async function settleEntries(ledger: UsageLedger, counter: CounterDoc, postings: PostingDoc[]): Promise<boolean> {
  const byId = new Map(postings.map((posting) => [posting._id, posting]));
  let changed = false;
  for (const entry of counter.pending) {
    const verdict = judge(entry, byId.get(entry.id.slice(0, entry.id.lastIndexOf('#'))));
    if (verdict === 'settled') {
      await ledger.pullPending([{ counterId: counter._id, entryId: entry.id }]);
      changed = true;
    } else if (verdict === 'stale') {
      changed = (await ledger.compensate(counter._id, entry)) || changed;
    }
  }
  return changed;
}

async function acceptedTotals(ledger: UsageLedger, postings: PostingDoc[], ownerId: string) {
  const posted = new Map(postings.filter((posting) => posting.state === 'POSTED').map((posting) => [posting._id, posting]));
  let expected = 0n;
  let acceptedEvents = 0;
  const hours: Record<string, Micros> = {};
  const members: Record<string, Micros> = {};
  const burns: NonNullable<CounterDoc['burns']> = {};
  if (posted.size === 0) return { expected, hours, members, burns, acceptedEvents };
  for await (const event of ledger.eventsOfPostings([...posted.keys()])) {
    const posting = posted.get(event.postingId)!;
    const run = posting.outcomes?.find((candidate) => candidate.first <= event.seq && event.seq <= candidate.last);
    if (run?.outcome !== 'ACCEPTED') continue;
    const own = toMicros(event.quantity);
    // R14: a burn counted its credits, rounded up as recorded.
    const quantity = event.creditsPerUnit === undefined ? own : creditsFor(own, toMicros(event.creditsPerUnit));
    expected += quantity;
    acceptedEvents++;
    const hour = hourKey(event.timestamp);
    if (event.creditsPerUnit !== undefined) {
      const burn = burns[event.feature] ?? { used: 0n, hours: {} };
      burns[event.feature] = burn;
      burn.used += own;
      burn.hours[hour] = (burn.hours[hour] ?? 0n) + own;
    }
    hours[hour] = (hours[hour] ?? 0n) + quantity;
    if (posting.accountId !== ownerId) members[memberKey(posting.accountId)] = (members[memberKey(posting.accountId)] ?? 0n) + quantity;
  }
  return { expected, hours, members, burns, acceptedEvents };
}

/** Burning features whose own units or hour buckets differ from their events' (R14). */
function countDriftedBurns(actual: NonNullable<CounterDoc['burns']>, expected: NonNullable<CounterDoc['burns']>): number {
  let drifted = 0;
  for (const feature of new Set([...Object.keys(actual), ...Object.keys(expected)])) {
    const stored = actual[feature];
    const counted = expected[feature];
    if (toMicros(stored?.used) !== (counted?.used ?? 0n) || countDriftedHours(stored?.hours ?? {}, counted?.hours ?? {}) > 0) drifted++;
  }
  return drifted;
}

function countDriftedHours(actual: Record<string, unknown>, expected: Record<string, Micros>): number {
  const keys = new Set([...Object.keys(actual), ...Object.keys(expected)]);
  let drifted = 0;
  for (const key of keys) if (toMicros(actual[key] ?? 0n) !== (expected[key] ?? 0n)) drifted++;
  return drifted;
}

async function notFound(ledger: UsageLedger, target: { accountId: string; feature: string; periodStart: Date }): Promise<NotFoundError> {
  const periods = await ledger.recentPeriodStarts(target.accountId, target.feature, 5);
  const known = periods.map((periodStart) => periodStart.toISOString()).join(', ');
  return new NotFoundError(
    `No usage counter for account "${target.accountId}", feature "${target.feature}" and period start ${target.periodStart.toISOString()}.` +
      (known ? ` Recent period starts: ${known}.` : ' The account has no usage of this feature.'),
  );
}
