import { memberKey } from '../../shared/counter-key.js';
import { toMicros, type Micros } from '../../shared/quantity.js';
import { capacityOf } from '../entitlements/index.js';
import { isPeriodFinal, type CounterDoc } from './counters.js';
import { decideGroup, needsObservedUsage, reasonsAt, type MemberDecision, type MemberTerms } from './decisions.js';
import type { FaultInjector } from './faults.js';
import { ensureLease } from './lease.js';
import { burnOf } from './burns.js';
import { beyondIncluded, memberTerms, narrow, withAllGrants, type GrantsPlugin, type PreparedTerms } from './member-terms.js';
import type { CounterChange, DecisionReason, PendingEntry, PostingDoc } from './model.js';
import type { Member } from './plan.js';
import type { UsageLedger } from './repository.js';
import type { Decide } from './terms.js';

/**
 * SPEC §6 step 2: decide a posting's members (R6 enforcement) and apply their increment
 * to the counter in one guarded update ($inc used and hour buckets, $push the pending
 * entry `${posting}#${attempt}`), at most once per attempt.
 *
 * R7 idempotency rests on that entry: the update's filter refuses an attempt already in
 * `pending`, and a resumed attempt that finds a previous attempt's entry adopts it instead
 * of applying again (`adopt`). The entry id carries the attempt so that a stalled worker's
 * late update can never pass for the settled one (the sweeper undoes it; see engine.ts).
 */

/** What the counter step decided: the basis of the audit, the receipts and POSTED. */
export interface Settlement {
  appliedAs: string | null;
  before: Micros | null;
  inc: Micros;
  late: boolean;
  decisions: MemberDecision[];
  change: CounterChange | null;
  /** R19: when the rate window that refused members ends (set by settle.ts). */
  retryAfter?: Date | null;
}

export interface GuardedUpdateDeps {
  ledger: UsageLedger;
  faults: FaultInjector;
  /** Read at each call: the grants module plugs in after construction. */
  plugins: GrantsPlugin & { readonly decide: Decide };
  leaseMs: number;
}

const MAX_COUNTER_ATTEMPTS = 100;
const LAST_SEEN_CAPACITY = 10_000;

export class GuardedUpdate {
  /** The last `used` this instance saw per counter: a first guess for HARD batches, never trusted. */
  private readonly lastSeenUsed = new Map<string, Micros>();

  constructor(private readonly deps: GuardedUpdateDeps) {}

  /** Decides the posting's members and applies the increment once (adopting it when `resumed`). */
  async apply(posting: PostingDoc, members: Member[], resumed: boolean, prepared?: Promise<PreparedTerms>): Promise<Settlement> {
    const { ledger, plugins } = this.deps;
    const none: Settlement = { appliedAs: null, before: null, inc: 0n, late: false, decisions: [], change: null };
    if (members.length === 0) return none;
    if (posting.counterId === null || posting.period === null) {
      const reason = posting.refusal ?? 'NOT_ENTITLED';
      return { ...none, decisions: members.map((member) => ({ seq: member.doc.seq, outcome: 'REJECTED', reason })) };
    }
    const counterId = posting.counterId;
    let { terms, complete } = prepared ? await narrow(plugins, await prepared, members) : await memberTerms(plugins, members);
    /** Fetches the remaining grants once usage from `used` on goes beyond `included`. */
    const grantsIfNeeded = async (used: Micros): Promise<boolean> => {
      if (complete || !beyondIncluded(terms, used)) return false;
      terms = await withAllGrants(plugins, terms);
      complete = true;
      return true;
    };

    let counter: CounterDoc | null | undefined;
    if (resumed) {
      // A previous attempt may have applied before dying: its entry is the proof. Adopt it.
      counter = await ledger.counter(counterId);
      const adopted = counter?.pending.find((entry) => entry.id.startsWith(`${posting._id}#`));
      if (adopted && counter) return this.adopt(posting, await withAllGrants(plugins, terms), counter, adopted);
    }

    const entryId = `${posting._id}#${posting.attempt}`;
    // R13: a member's draw on an ancestor's pool lands on the owner's counter, with the
    // member's share beside `used` in the same document, so one guarded update decides
    // both the pool's limit and the member's cap.
    const pool = poolOf(terms);
    const member = pool ? memberKey(pool.memberId) : undefined;
    const limit = pool?.limit ?? null;
    const hard = needsObservedUsage(terms) || limit !== null;
    const burn = terms.find((entry) => entry.terms.burn)?.terms.burn?.creditFeature;
    for (let attempt = 0; attempt < MAX_COUNTER_ATTEMPTS; attempt++) {
      // A HARD batch is decided against the counter's value. The last value this instance
      // saw is tried first: the guard makes a wrong guess fail safely, and a re-read follows.
      // (A single HARD event needs neither: its guard, limit - q, does not depend on `used`.)
      const guess = counter === undefined && hard && terms.length > 1 ? this.lastSeenUsed.get(counterId) : undefined;
      if (counter === undefined && hard && terms.length > 1 && guess === undefined)
        counter = this.remember(await ledger.counter(counterId));
      const observed = counter ? toMicros(counter.used) : (guess ?? 0n);
      await grantsIfNeeded(observed);
      // An unseen share is taken as 0: the member guard makes that guess fail safely.
      const cap = limit === null ? null : { limit, share: member && counter ? toMicros(counter.members?.[member]) : 0n };
      const group = decideGroup(terms, observed, plugins.decide, cap);
      const refused = group.decisions.some((decision) => decision.reason === 'QUOTA_EXCEEDED');
      if (refused && cap !== null && counter === undefined) {
        // A refusal by the member's cap must rest on the share as it is.
        counter = this.remember(await ledger.counter(counterId));
        continue;
      }
      if (refused && guess !== undefined) {
        // A refusal must rest on the counter as it is, not on a remembered value...
        counter = this.remember(await ledger.counter(counterId));
        continue;
      }
      if (refused && !complete) {
        // ...and on every grant in force at each event's instant.
        terms = await withAllGrants(plugins, terms);
        complete = true;
        continue;
      }
      if (group.inc === 0n) {
        counter ??= await ledger.counter(counterId);
        return { ...none, late: isPeriodFinal(counter), decisions: group.decisions };
      }
      await ensureLease(ledger, posting, this.deps.leaseMs);
      const entry: PendingEntry = {
        id: entryId,
        at: new Date(),
        inc: group.inc,
        hours: group.hours,
        rejected: group.decisions.filter((d) => d.outcome === 'REJECTED').map(({ seq, reason }) => ({ seq, reason })),
        ...(member === undefined ? {} : { member }),
        ...(burn === undefined ? {} : { burn: burnOf(terms, group.decisions) }),
      };
      const result = await ledger.applyToCounter({
        counterId,
        accountId: pool?.ownerId ?? posting.accountId,
        // The counter's own feature: the credit feature when the posting burns credits (R14).
        feature: burn ?? posting.feature,
        periodStart: posting.period.start,
        periodEnd: posting.period.end,
        entry,
        guard: hard ? group.guard : null,
        memberGuard: group.memberGuard,
        mayCreate: counter === null || (counter === undefined && guess === undefined),
      });
      if (result === 'not-applied') {
        counter = this.remember(await ledger.counter(counterId));
        continue;
      }
      // Crash point: applied but not settled; recovery adopts this entry.
      this.deps.faults.after('counter.updated', posting.accountId);
      const before = result ? toMicros(result.used) : 0n;
      this.rememberUsed(counterId, before + group.inc);
      // The accepted set stands (the guard made it valid); reasons follow the real pre-image.
      const regranted = await grantsIfNeeded(before);
      const decisions = before === observed && !regranted ? group.decisions : reasonsAt(terms, group.decisions, before, plugins.decide);
      return {
        appliedAs: entryId,
        before,
        inc: group.inc,
        late: isPeriodFinal(result),
        decisions,
        change: counterChange(posting, terms, before, before + group.inc, false),
      };
    }
    throw new Error(`counter ${counterId} kept changing under ${MAX_COUNTER_ATTEMPTS} attempts`);
  }

  /**
   * Recovery found a previous attempt's entry: that increment stands, with its decisions
   * (R7: the entry is the proof it was applied, so applying again would count it twice).
   */
  private adopt(posting: PostingDoc, terms: MemberTerms[], counter: CounterDoc, entry: PendingEntry): Settlement {
    const rejected = new Map(entry.rejected.map(({ seq, reason }) => [seq, reason]));
    const used = toMicros(counter.used);
    // The original `before` died with the process; the counter as found bounds it above.
    const before = used - entry.inc;
    const decisions = reasonsAt(
      terms,
      terms.map(({ seq }) => {
        const reason = rejected.get(seq);
        return reason
          ? { seq, outcome: 'REJECTED' as const, reason }
          : { seq, outcome: 'ACCEPTED' as const, reason: 'INCLUDED' as DecisionReason };
      }),
      before,
      this.deps.plugins.decide,
    );
    return {
      appliedAs: entry.id,
      before: null,
      inc: entry.inc,
      late: isPeriodFinal(counter),
      decisions,
      change: counterChange(posting, terms, before, used, true),
    };
  }

  private remember(counter: CounterDoc | null): CounterDoc | null {
    if (counter) this.rememberUsed(counter._id, toMicros(counter.used));
    return counter;
  }

  /** A bounded most-recently-used map: hot counters stay, cold ones fall out. */
  private rememberUsed(counterId: string, used: Micros): void {
    this.lastSeenUsed.delete(counterId);
    this.lastSeenUsed.set(counterId, used);
    if (this.lastSeenUsed.size > LAST_SEEN_CAPACITY) this.lastSeenUsed.delete(this.lastSeenUsed.keys().next().value!);
  }
}

/** The pool a posting's member draws on (R13): one account and one counter, so one pool. */
function poolOf(terms: readonly MemberTerms[]) {
  return terms.find((member) => member.terms.pool)?.terms.pool ?? null;
}

/** The event alerts listen to (R9), with capacity as of the latest event (whose grants are always known). */
function counterChange(posting: PostingDoc, terms: MemberTerms[], before: Micros, after: Micros, replayed: boolean): CounterChange {
  const latest = terms.reduce((best, member) => (member.at.getTime() >= best.at.getTime() ? member : best));
  const current = latest.terms.hasAccess ? latest : (terms.findLast((member) => member.terms.hasAccess) ?? latest);
  const pool = poolOf(terms);
  return {
    // A pool counter's alerts are the pool's, once (R13): they belong to its owner.
    accountId: pool?.ownerId ?? posting.accountId,
    // A credit counter's alerts are the credit feature's (R14).
    feature: current.terms.burn?.creditFeature ?? posting.feature,
    counterId: posting.counterId!,
    period: posting.period!,
    before,
    after,
    capacity: capacityOf(current.terms, current.granted),
    thresholds: current.terms.thresholds,
    ...(current.terms.pooled ? { pooled: true } : {}),
    replayed,
  };
}
