import { setTimeout as sleep } from 'node:timers/promises';
import { counterId } from '../../shared/counter-key.js';
import { toMicros, type Micros } from '../../shared/quantity.js';
import { capacityOf } from '../entitlements/index.js';
import type { MemberDecision, MemberTerms, Settlement } from './decisions.js';
import type { FaultInjector } from './faults.js';
import { decideGauge } from './gauge.js';
import { ensureLease } from './lease.js';
import type { CounterChange, PendingEntry, PostingDoc } from './model.js';
import type { Member } from './plan.js';
import type { UsageLedger } from './repository.js';
import type { GaugeLedger } from './gauge-ledger.js';
import type { Decide } from './terms.js';

/**
 * SPEC §6 step 2 for a GAUGE (R16). The level lives in one document per (account,
 * feature) (`gaugeLevelId`), whatever the period, so it carries over; inside it, `peaks`
 * and `levels` per period (see gauge.ts) are what rating bills.
 *
 * The update is a compare-and-set on the document's `seq` (every gauge write bumps it),
 * so the posting is decided on the exact level: HARD is never overshot, a setUsage's
 * delta is exact, and the period's peak is known in the same write ($max). A writer that
 * loses the race re-reads and decides again. Exactly-once is the usual mechanism: the
 * pending entry `${posting}#${attempt}` in the same write, adopted on recovery; the entry
 * also keeps the level before and the sequence number, so a replayed change is exact.
 */
const MAX_GAUGE_ATTEMPTS = 1_000;

export interface GaugeUpdateDeps {
  ledger: UsageLedger;
  gauges: GaugeLedger;
  faults: FaultInjector;
  decide: () => Decide;
  leaseMs: number;
}

export async function applyGauge(
  deps: GaugeUpdateDeps,
  posting: PostingDoc,
  members: readonly Member[],
  terms: MemberTerms[],
  resumed: boolean,
): Promise<Settlement> {
  const levelId = posting.counterId!;
  const sets = new Set(members.filter((member) => member.doc.set).map((member) => member.doc.seq));
  const entryId = `${posting._id}#${posting.attempt}`;
  for (let attempt = 0; attempt < MAX_GAUGE_ATTEMPTS; attempt++) {
    const level = await deps.gauges.read(levelId);
    if (resumed && attempt === 0) {
      // A previous attempt may have applied before dying: its entry is the proof. Adopt it.
      const adopted = level?.pending.find((entry) => entry.id.startsWith(`${posting._id}#`));
      if (adopted?.gauge) return adopt(deps, posting, terms, sets, adopted);
    }
    const observed = toMicros(level?.used);
    const seq = level?.seq ?? 0;
    const group = decideGauge(terms, sets, observed, deps.decide());
    if (group.inc === 0n) return { appliedAs: null, before: null, inc: 0n, late: false, decisions: group.decisions, change: null };
    await ensureLease(deps.ledger, posting, deps.leaseMs);
    const entry: PendingEntry = {
      id: entryId,
      at: new Date(),
      inc: group.inc,
      hours: group.hours,
      rejected: rejectedOf(group.decisions),
      gauge: { seq: seq + 1, before: observed },
    };
    const applied = await deps.gauges.apply({
      levelId,
      accountId: posting.accountId,
      feature: posting.feature,
      entry,
      expectSeq: level ? seq : null,
      expectUsed: observed,
      peaks: group.peaks,
      levels: group.levels,
    });
    if (!applied) {
      // Someone else changed the level first: decide again on the new one, jittered so
      // that many racing writers spread out instead of colliding in lockstep.
      if (attempt > 2) await sleep(Math.random() * Math.min(25, attempt));
      continue;
    }
    // Crash point: applied but not settled; recovery adopts this entry.
    deps.faults.after('counter.updated', posting.accountId);
    return {
      appliedAs: entryId,
      before: observed,
      inc: group.inc,
      late: false,
      decisions: group.decisions,
      change: gaugeChange(posting, terms, observed, group.after, seq + 1),
    };
  }
  throw new Error(`gauge ${levelId} kept changing under ${MAX_GAUGE_ATTEMPTS} attempts`);
}

/** Recovery found a previous attempt's entry: that change stands, exactly as it was decided. */
function adopt(
  deps: GaugeUpdateDeps,
  posting: PostingDoc,
  terms: MemberTerms[],
  sets: ReadonlySet<number>,
  entry: PendingEntry,
): Settlement {
  const { before, seq } = entry.gauge!;
  const rejected = new Map(entry.rejected.map(({ seq: member, reason }) => [member, reason]));
  const redecided = decideGauge(terms, sets, before, deps.decide());
  const decisions = redecided.decisions.map((decision): MemberDecision => {
    const reason = rejected.get(decision.seq);
    if (reason) return { seq: decision.seq, outcome: 'REJECTED', reason };
    return decision.outcome === 'ACCEPTED' ? decision : { seq: decision.seq, outcome: 'ACCEPTED', reason: 'INCLUDED' };
  });
  return {
    appliedAs: entry.id,
    before,
    inc: entry.inc,
    late: false,
    decisions,
    change: gaugeChange(posting, terms, before, before + entry.inc, seq),
  };
}

function rejectedOf(decisions: readonly MemberDecision[]): PendingEntry['rejected'] {
  return decisions.filter((decision) => decision.outcome === 'REJECTED').map(({ seq, reason }) => ({ seq, reason }));
}

/**
 * CounterChanged for a gauge: alerts see the period of the latest event (its counter id
 * names that period, as rating's does) and the exact sequence number of the change.
 */
function gaugeChange(posting: PostingDoc, terms: MemberTerms[], before: Micros, after: Micros, gaugeSeq: number): CounterChange {
  const latest = terms.reduce((best, member) => (member.at.getTime() >= best.at.getTime() ? member : best));
  const current = latest.terms.hasAccess && latest.terms.period ? latest : (terms.findLast((member) => member.terms.period) ?? latest);
  const period = current.terms.period ?? posting.period!;
  return {
    accountId: posting.accountId,
    feature: posting.feature,
    counterId: counterId(posting.accountId, posting.feature, period.start),
    period,
    before,
    after,
    capacity: capacityOf(current.terms, current.granted),
    thresholds: current.terms.thresholds,
    replayed: false,
    gaugeSeq,
  };
}
