import { randomUUID } from 'node:crypto';
import type { Logger } from '../../logger.js';
import { BadInputError, IdempotencyKeyReusedError } from '../../shared/errors.js';
import { toMicros, type Micros } from '../../shared/quantity.js';
import type { AuditInput } from '../audit/model.js';
import type { AuditLog } from '../audit/repository.js';
import { capacityOf } from '../entitlements/decision.js';
import type { EffectiveTerms } from '../entitlements/model.js';
import { hourKey, isPeriodFinal, type CounterDoc } from './counters.js';
import { decideGroup, needsObservedUsage, reasonsAt, type MemberDecision, type MemberTerms } from './decisions.js';
import { InjectedFault, type FaultInjector, type WritePoint } from './faults.js';
import type { CounterHooks } from './hooks.js';
import { eventId, samePayload } from './idempotency.js';
import type {
  CounterChange,
  DecisionReason,
  PendingEntry,
  PostingDoc,
  UsageEventCommand,
  UsageEventDoc,
  UsageReceiptView,
} from './model.js';
import { duplicateAuditEntry, hasOutcome, outcomeOf, outcomeRuns, postingAuditEntries, receiptOf } from './receipts.js';
import type { UsageLedger } from './repository.js';
import type { Decide, GrantedCapacity, OpenTerms, TermsResolver } from './terms.js';

/**
 * The ingestion engine: R6 and R7 without multi-document transactions (SPEC §6).
 *
 * A request becomes postings, one per counter it touches. Each posting goes:
 *
 *   1. insert the posting RESERVED with a lease (the unit of work and of recovery) and,
 *      together, its events, whose unique _id turns retries into duplicates
 *   2. one guarded counter update per posting           ($inc + $push pending entry)
 *   3. together: the counter change to hooks            (alerts' exactly-once point)
 *      and audit entries with deterministic ids         (a replay cannot duplicate them)
 *   4. mark the posting POSTED, fenced on owner+attempt; answer the request
 *   5. pull the pending entry (housekeeping, off the request path)
 *
 * A crash between any two writes leaves the posting RESERVED; once its lease expires, the
 * next touch (a retry) or the sweeper takes it over (attempt + 1) and resumes from step 2,
 * adopting the increment if a previous attempt's entry is already in `pending`. Events
 * written without their posting were never counted; a retry records them afresh.
 *
 * Where this departs from SPEC §6, and why:
 * - The lease and outcome live on the posting, not on each event: settling a batch is
 *   one write instead of a thousand, and a batch group is taken over whole, never split
 *   between two recoverers (which could otherwise count a subset twice or not at all).
 * - The pending entry id includes the attempt number. SPEC §6 guards on the event id, so
 *   a worker that stalled *before* its counter update, past its lease, could apply it
 *   after the new owner had finished and pulled the id: a double count. Here its stale
 *   entry `${posting}#${n}` can never equal the settled `appliedAs`, and the sweeper
 *   undoes it atomically (PendingEntry carries its increments).
 */

export interface EnginePlugins {
  openTerms: OpenTerms;
  decide: Decide;
  granted: GrantedCapacity;
}

export interface EngineDeps {
  ledger: UsageLedger;
  audit: AuditLog;
  hooks: CounterHooks;
  faults: FaultInjector;
  plugins: EnginePlugins;
  logger: Logger;
  leaseMs: number;
  retentionDays: number;
  instanceId: string;
}

export interface RequestOrigin {
  actor: string;
  requestId: string | null;
  receivedAt: Date;
}

/** The operation lost its posting to a takeover: someone else finishes it. */
class LeaseLost extends Error {}

/** A posting stayed in flight longer than we are prepared to wait. */
export class UsageInProgressError extends Error {
  constructor(postingId: string) {
    super(`usage posting ${postingId} is still being processed; retry the request`);
  }
}

interface Member {
  /** Position in the request. */
  index: number;
  command: UsageEventCommand;
  doc: UsageEventDoc;
  terms: EffectiveTerms;
}

/** Members' terms with granted capacity known at the latest instant (`complete`: at all). */
interface PreparedTerms {
  terms: MemberTerms[];
  complete: boolean;
  latest: number;
}

interface Settlement {
  appliedAs: string | null;
  before: Micros | null;
  inc: Micros;
  late: boolean;
  decisions: MemberDecision[];
  change: CounterChange | null;
}

const MAX_COUNTER_ATTEMPTS = 100;
const LAST_SEEN_CAPACITY = 10_000;

export class UsageEngine {
  /** The last `used` this instance saw per counter: a first guess for HARD batches, never trusted. */
  private readonly lastSeenUsed = new Map<string, Micros>();
  private readonly pulls = new Set<Promise<void>>();

  constructor(private readonly deps: EngineDeps) {}

  private get ledger(): UsageLedger {
    return this.deps.ledger;
  }

  /**
   * Records events (one for recordUsage, up to 1,000 for a batch) and returns one receipt
   * per input position. Everything that can be refused is refused before the first write.
   */
  async ingest(commands: readonly UsageEventCommand[], origin: RequestOrigin): Promise<UsageReceiptView[]> {
    // In-request duplicates: the first occurrence is the original (R7 within one batch).
    const firstByEventId = new Map<string, number>();
    const duplicateOf = new Map<number, number>();
    commands.forEach((command, index) => {
      const id = eventId(command.accountId, command.idempotencyKey);
      const first = firstByEventId.get(id);
      if (first === undefined) {
        firstByEventId.set(id, index);
        return;
      }
      if (!sameCommandPayload(commands[first]!, command)) {
        throw new IdempotencyKeyReusedError(
          `events[${index}] reuses idempotencyKey "${command.idempotencyKey}" of events[${first}] with a different payload; use a new key for a different event.`,
        );
      }
      duplicateOf.set(index, first);
    });
    const originals = [...firstByEventId.values()];

    // recordUsage: a retry is by far the most common duplicate; one read spares it a posting.
    if (commands.length === 1) {
      const stored = await this.ledger.events.findOne({ _id: eventId(commands[0]!.accountId, commands[0]!.idempotencyKey) });
      if (stored) return [await this.duplicateReceipt(commands[0]!, stored, origin)];
    }

    const terms = await this.resolveTerms(this.deps.plugins.openTerms(), originals.map((index) => commands[index]!));
    originals.forEach((index, position) => assertRecordable(commands[index]!, terms[position]!, commands.length > 1 ? index : undefined));
    const receipts: Array<UsageReceiptView | undefined> = new Array(commands.length);

    const { postings, members } = this.plan(commands, originals, terms, origin);
    // Granted capacity does not depend on which events turn out to be duplicates: it is
    // fetched while the posting and the events are written.
    const prepared = this.prepareTerms(postings, members);
    // The postings and their events are written together. If the process dies with the
    // events written and not their posting, those events were never counted: a retry finds
    // them without a posting once a lease has passed and records them afresh (awaitPosting).
    const [, collided] = await Promise.all([this.insertPostings(postings), this.ledger.insertEvents(members.map((member) => member.doc))]);
    this.fault('events.inserted', postings);

    const stored = collided.size > 0 ? await this.loadStored([...collided].map((position) => members[position]!.doc._id)) : new Map();
    const reused: Member[] = [];
    const storedDuplicates: Array<{ member: Member; stored: UsageEventDoc }> = [];
    for (const position of collided) {
      const member = members[position]!;
      const existing = stored.get(member.doc._id);
      if (!existing) throw new Error(`event ${member.doc._id} collided but cannot be read back`);
      if (samePayload(member.command, existing)) storedDuplicates.push({ member, stored: existing });
      else reused.push(member);
    }
    const membersByPosting = new Map<string, Member[]>(postings.map((posting) => [posting._id, []]));
    members.forEach((member, position) => {
      if (!collided.has(position)) membersByPosting.get(member.doc.postingId)!.push(member);
    });

    const settled = await Promise.all(
      postings.map((posting) => this.process(posting, membersByPosting.get(posting._id)!, origin, false, prepared.get(posting._id))),
    );
    const orphans: Array<{ member: Member; doc: UsageEventDoc }> = [];
    for (const { posting, final } of settled) {
      for (const member of membersByPosting.get(posting._id)!) {
        if (hasOutcome(final, member.doc)) receipts[member.index] = receiptOf(final, member.doc, null);
        else orphans.push({ member, doc: member.doc });
      }
    }

    const duplicateAudit: AuditInput[] = [];
    const storedFinal = await this.awaitPostings([...new Set(storedDuplicates.map(({ stored: doc }) => doc.postingId))]);
    for (const { member, stored: doc } of storedDuplicates) {
      const posting = storedFinal.get(doc.postingId);
      if (posting && hasOutcome(posting, doc)) receipts[member.index] = receiptOf(posting, doc, 'DUPLICATE');
      else orphans.push({ member, doc });
    }
    if (orphans.length > 0) {
      const again = await this.recordOrphansAgain(orphans.map(({ doc }) => doc), orphans.map(({ member }) => member.command), origin);
      orphans.forEach(({ member }, i) => (receipts[member.index] = again[i]));
    }
    for (const [index, first] of duplicateOf) {
      const original = receipts[first];
      if (original) receipts[index] = { ...original, status: 'DUPLICATE', originalStatus: outcomeOf(original) };
    }
    for (const [index, receipt] of receipts.entries()) {
      if (receipt?.status === 'DUPLICATE') duplicateAudit.push(duplicateAuditEntry(receipt, origin, index, commands.length));
    }
    await this.deps.audit.recordMany(duplicateAudit);

    if (reused.length > 0) {
      const keys = reused.map((member) => `"${member.command.idempotencyKey}"`).join(', ');
      throw new IdempotencyKeyReusedError(
        `idempotencyKey ${keys} ${reused.length === 1 ? 'was' : 'were'} already used with a different payload; use a new key for a different event.` +
          (commands.length > 1 ? ' The other events of the batch were recorded: resend them to get their receipts (as DUPLICATE).' : ''),
      );
    }
    return receipts as UsageReceiptView[];
  }

  /** Resumes a posting whose lease this process now holds (after `takeOver`). */
  async resume(posting: PostingDoc): Promise<PostingDoc> {
    const events = await this.ledger.membersOf(posting._id);
    const terms = await this.resolveTerms(this.deps.plugins.openTerms(), events);
    const members = events.map((doc, index) => ({ index, doc, terms: terms[index]!, command: doc }));
    return (await this.process(posting, members, { actor: posting.actor, requestId: posting.requestId, receivedAt: posting.receivedAt }, true)).final;
  }

  /**
   * Takes over an expired lease atomically (returnDocument 'before', then the change is
   * applied locally). Null when the posting is settled or someone else holds it.
   */
  async takeOver(postingId: string, seenAttempt?: number): Promise<PostingDoc | null> {
    const now = new Date();
    const lease = { owner: this.newLeaseOwner(), expiresAt: new Date(now.getTime() + this.deps.leaseMs) };
    const filter: Record<string, unknown> = { _id: postingId, state: 'RESERVED', 'lease.expiresAt': { $lt: now } };
    if (seenAttempt !== undefined) filter.attempt = seenAttempt;
    const before = await this.ledger.postings.findOneAndUpdate(filter, { $set: { lease }, $inc: { attempt: 1 } }, { returnDocument: 'before' });
    if (!before) return null;
    this.deps.faults.after('posting.taken-over', before.accountId);
    this.deps.logger.warn({ postingId, attempt: before.attempt + 1, previousOwner: before.lease.owner }, 'took over an expired usage posting');
    return { ...before, attempt: before.attempt + 1, lease };
  }

  /**
   * Waits for a posting to be POSTED, taking it over if its owner's lease expires. Null
   * when it never came to exist: its writer died after writing the events but not the
   * posting (they are written together), so those events were never counted.
   */
  async awaitPosting(postingId: string): Promise<PostingDoc | null> {
    const deadline = Date.now() + 3 * this.deps.leaseMs + 10_000;
    let delay = 5;
    for (;;) {
      const posting = await this.ledger.postings.findOne({ _id: postingId });
      if (!posting) {
        if (postingCreatedAt(postingId) + this.deps.leaseMs < Date.now()) return null;
        await sleep(delay);
        delay = Math.min(delay * 2, 100);
        continue;
      }
      if (posting.state === 'POSTED') return posting;
      if (posting.lease.expiresAt.getTime() < Date.now()) {
        const taken = await this.takeOver(postingId, posting.attempt);
        if (taken) return this.resume(taken);
      }
      if (Date.now() > deadline) throw new UsageInProgressError(postingId);
      await sleep(delay);
      delay = Math.min(delay * 2, 100);
    }
  }

  // ---- one posting, fresh or resumed -------------------------------------------------

  private async process(
    posting: PostingDoc,
    members: Member[],
    origin: RequestOrigin,
    resumed = false,
    prepared?: Promise<PreparedTerms>,
  ): Promise<{ posting: PostingDoc; final: PostingDoc }> {
    const memberDocs = members.map((member) => member.doc);
    try {
      const settlement = await this.settle(posting, members, resumed, prepared);
      // Both must be done before POSTED (recovery replays both), neither needs the other.
      await Promise.all([
        settlement.change ? this.deps.hooks.publish([settlement.change]) : undefined,
        this.deps.audit.recordMany(postingAuditEntries(posting, memberDocs, settlement), { replay: true }),
      ]);
      this.deps.faults.after('audit.written', posting.accountId);
      const final = await this.markPosted(posting, settlement);
      this.deps.faults.after('posting.posted', posting.accountId);
      if (settlement.appliedAs && posting.counterId) this.pullLater(posting.counterId, settlement.appliedAs, posting.accountId);
      return { posting, final };
    } catch (error) {
      if (!(error instanceof LeaseLost)) throw error;
      this.deps.logger.warn({ postingId: posting._id, origin: origin.requestId }, 'usage posting was taken over; awaiting its outcome');
      const final = await this.awaitPosting(posting._id);
      if (!final) throw new Error(`usage posting ${posting._id} vanished after a takeover`);
      return { posting, final };
    }
  }

  /**
   * Step 6 off the request path: once POSTED the outcome is final and the entry is only
   * housekeeping (a later update of the counter is unaffected by it). If it fails, the
   * sweeper pulls the entry a lease later.
   */
  private pullLater(counterId: string, entryId: string, accountId: string): void {
    const pull: Promise<void> = this.ledger
      .pullPending(counterId, entryId)
      .then(() => this.deps.faults.after('pending.pulled', accountId))
      .catch((error: unknown) => {
        if (!(error instanceof InjectedFault)) this.deps.logger.warn({ err: error, counterId, entryId }, 'pulling a settled pending entry failed; the sweeper will');
      })
      .finally(() => this.pulls.delete(pull));
    this.pulls.add(pull);
  }

  /** Waits for pulls still in flight (before the database closes). */
  async drain(): Promise<void> {
    await Promise.all([...this.pulls]);
  }

  /** Steps 3 (counter) of a posting: decides its members and applies the increment once. */
  private async settle(posting: PostingDoc, members: Member[], resumed: boolean, prepared?: Promise<PreparedTerms>): Promise<Settlement> {
    const none: Settlement = { appliedAs: null, before: null, inc: 0n, late: false, decisions: [], change: null };
    if (members.length === 0) return none;
    if (posting.counterId === null || posting.period === null) {
      const reason = posting.refusal ?? 'NOT_ENTITLED';
      return { ...none, decisions: members.map((member) => ({ seq: member.doc.seq, outcome: 'REJECTED', reason })) };
    }
    const counterId = posting.counterId;
    let { terms, complete } = prepared ? await this.narrow(await prepared, members) : await this.memberTerms(members);
    /** Fetches the remaining grants once usage from `used` on goes beyond `included`. */
    const grantsIfNeeded = async (used: Micros): Promise<boolean> => {
      if (complete || !beyondIncluded(terms, used)) return false;
      terms = await this.withAllGrants(terms);
      complete = true;
      return true;
    };

    let counter: CounterDoc | null | undefined;
    if (resumed) {
      // A previous attempt may have applied before dying: its entry is the proof. Adopt it.
      counter = await this.ledger.counter(counterId);
      const adopted = counter?.pending.find((entry) => entry.id.startsWith(`${posting._id}#`));
      if (adopted && counter) return this.adopt(posting, await this.withAllGrants(terms), counter, adopted);
    }

    const entryId = `${posting._id}#${posting.attempt}`;
    const hard = needsObservedUsage(terms);
    for (let attempt = 0; attempt < MAX_COUNTER_ATTEMPTS; attempt++) {
      // A HARD batch is decided against the counter's value. The last value this instance
      // saw is tried first: the guard makes a wrong guess fail safely, and a re-read follows.
      // (A single HARD event needs neither: its guard, limit - q, does not depend on `used`.)
      const guess = counter === undefined && hard && terms.length > 1 ? this.lastSeenUsed.get(counterId) : undefined;
      if (counter === undefined && hard && terms.length > 1 && guess === undefined) counter = this.remember(await this.ledger.counter(counterId));
      const observed = counter ? toMicros(counter.used) : (guess ?? 0n);
      await grantsIfNeeded(observed);
      const group = decideGroup(terms, observed, this.deps.plugins.decide);
      const refused = group.decisions.some((decision) => decision.reason === 'QUOTA_EXCEEDED');
      if (refused && guess !== undefined) {
        // A refusal must rest on the counter as it is, not on a remembered value...
        counter = this.remember(await this.ledger.counter(counterId));
        continue;
      }
      if (refused && !complete) {
        // ...and on every grant in force at each event's instant.
        terms = await this.withAllGrants(terms);
        complete = true;
        continue;
      }
      if (group.inc === 0n) {
        counter ??= await this.ledger.counter(counterId);
        return { ...none, late: isPeriodFinal(counter), decisions: group.decisions };
      }
      await this.ensureLease(posting);
      const entry: PendingEntry = {
        id: entryId,
        at: new Date(),
        inc: group.inc,
        hours: group.hours,
        rejected: group.decisions.filter((d) => d.outcome === 'REJECTED').map(({ seq, reason }) => ({ seq, reason })),
      };
      const result = await this.ledger.applyToCounter({
        counterId,
        accountId: posting.accountId,
        feature: posting.feature,
        periodStart: posting.period.start,
        periodEnd: posting.period.end,
        entry,
        guard: hard ? group.guard : null,
        mayCreate: counter === null || (counter === undefined && guess === undefined),
      });
      if (result === 'not-applied') {
        counter = this.remember(await this.ledger.counter(counterId));
        continue;
      }
      this.deps.faults.after('counter.updated', posting.accountId);
      const before = result ? toMicros(result.used) : 0n;
      this.rememberUsed(counterId, before + group.inc);
      // The accepted set stands (the guard made it valid); reasons follow the real pre-image.
      const regranted = await grantsIfNeeded(before);
      const decisions = before === observed && !regranted ? group.decisions : reasonsAt(terms, group.decisions, before, this.deps.plugins.decide);
      return {
        appliedAs: entryId,
        before,
        inc: group.inc,
        late: isPeriodFinal(result),
        decisions,
        change: this.counterChange(posting, terms, before, before + group.inc, false),
      };
    }
    throw new Error(`counter ${counterId} kept changing under ${MAX_COUNTER_ATTEMPTS} attempts`);
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

  /** Recovery found a previous attempt's entry: that increment stands, with its decisions. */
  private adopt(posting: PostingDoc, terms: MemberTerms[], counter: CounterDoc, entry: PendingEntry): Settlement {
    const rejected = new Map(entry.rejected.map(({ seq, reason }) => [seq, reason]));
    const used = toMicros(counter.used);
    // The original `before` died with the process; the counter as found bounds it above.
    const before = used - entry.inc;
    const decisions = reasonsAt(
      terms,
      terms.map(({ seq }) => {
        const reason = rejected.get(seq);
        return reason ? { seq, outcome: 'REJECTED' as const, reason } : { seq, outcome: 'ACCEPTED' as const, reason: 'INCLUDED' as DecisionReason };
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
      change: this.counterChange(posting, terms, before, used, true),
    };
  }

  private counterChange(posting: PostingDoc, terms: MemberTerms[], before: Micros, after: Micros, replayed: boolean): CounterChange {
    // Capacity as of the latest event (whose grants are always known).
    const latest = terms.reduce((best, member) => (member.at.getTime() >= best.at.getTime() ? member : best));
    const current = latest.terms.hasAccess ? latest : (terms.findLast((member) => member.terms.hasAccess) ?? latest);
    return {
      accountId: posting.accountId,
      feature: posting.feature,
      counterId: posting.counterId!,
      period: posting.period!,
      before,
      after,
      capacity: capacityOf(current.terms, current.granted),
      thresholds: current.terms.thresholds,
      replayed,
    };
  }

  /**
   * Members with their terms, and granted capacity (R5) for those at the latest instant:
   * the counter change reports capacity now. Grants at the other instants are fetched by
   * `withAllGrants` only when they can matter, i.e. when usage goes beyond `included`
   * (granted >= 0, so below it every decision is INCLUDED and no limit binds).
   */
  private prepareTerms(postings: readonly PostingDoc[], members: readonly Member[]): Map<string, Promise<PreparedTerms>> {
    const byPosting = new Map<string, Member[]>();
    for (const member of members) {
      let group = byPosting.get(member.doc.postingId);
      if (!group) byPosting.set(member.doc.postingId, (group = []));
      group.push(member);
    }
    const prepared = new Map<string, Promise<PreparedTerms>>();
    for (const posting of postings) {
      if (posting.counterId === null) continue;
      const promise = this.memberTerms(byPosting.get(posting._id) ?? []);
      promise.catch(() => undefined); // awaited (and rethrown) by settle, unless the request died first
      prepared.set(posting._id, promise);
    }
    return prepared;
  }

  /** Prepared terms for the members that were actually inserted (duplicates drop out). */
  private async narrow(prepared: PreparedTerms, members: Member[]): Promise<PreparedTerms> {
    if (members.length === prepared.terms.length) return prepared;
    const seqs = new Set(members.map((member) => member.doc.seq));
    const terms = prepared.terms.filter((member) => seqs.has(member.seq));
    const latest = Math.max(...terms.map((member) => member.at.getTime()));
    const atLatest = terms.filter((member) => member.at.getTime() === latest);
    if (latest !== prepared.latest) await this.fillGrants(atLatest, latest);
    return { terms, complete: atLatest.length === terms.length, latest };
  }

  private async memberTerms(members: Member[]): Promise<PreparedTerms> {
    const terms = members.map((member) => ({
      seq: member.doc.seq,
      quantity: toMicros(member.doc.quantity),
      hourKey: hourKey(member.doc.timestamp),
      at: member.doc.timestamp,
      terms: member.terms,
      granted: 0n,
    }));
    const latest = Math.max(...terms.map((member) => member.at.getTime()));
    const atLatest = terms.filter((member) => member.at.getTime() === latest);
    if (atLatest.length > 0) await this.fillGrants(atLatest, latest);
    return { terms, complete: atLatest.length === terms.length, latest };
  }

  /** Granted capacity at every member's own instant (R5: grants count inside their window only). */
  private async withAllGrants(terms: MemberTerms[]): Promise<MemberTerms[]> {
    const byInstant = new Map<number, MemberTerms[]>();
    for (const member of terms) {
      const instant = member.at.getTime();
      let group = byInstant.get(instant);
      if (!group) byInstant.set(instant, (group = []));
      group.push(member);
    }
    await Promise.all([...byInstant].map(([instant, group]) => this.fillGrants(group, instant)));
    return terms;
  }

  private async fillGrants(members: MemberTerms[], instant: number): Promise<void> {
    const granted = await this.deps.plugins.granted(members.map((member) => member.terms), new Date(instant));
    members.forEach((member, index) => (member.granted = granted[index] ?? 0n));
  }

  /**
   * A worker must not apply after its lease has run out: by then a recoverer may own the
   * posting. Renewing (fenced) keeps a slow but live worker in charge.
   */
  private async ensureLease(posting: PostingDoc): Promise<void> {
    const remaining = posting.lease.expiresAt.getTime() - Date.now();
    if (remaining > this.deps.leaseMs / 3) return;
    const expiresAt = new Date(Date.now() + this.deps.leaseMs);
    const renewed = await this.ledger.postings.updateOne(
      { _id: posting._id, state: 'RESERVED', attempt: posting.attempt, 'lease.owner': posting.lease.owner },
      { $set: { 'lease.expiresAt': expiresAt } },
    );
    if (renewed.matchedCount !== 1) throw new LeaseLost();
    posting.lease = { ...posting.lease, expiresAt };
  }

  /** Step 6, fenced: only the current owner of the current attempt may settle. */
  private async markPosted(posting: PostingDoc, settlement: Settlement): Promise<PostingDoc> {
    const posted = {
      state: 'POSTED' as const,
      appliedAs: settlement.appliedAs,
      before: settlement.before,
      inc: settlement.inc,
      late: settlement.late,
      outcomes: outcomeRuns(settlement.decisions),
      postedAt: new Date(),
    };
    const result = await this.ledger.postings.updateOne(
      { _id: posting._id, state: 'RESERVED', attempt: posting.attempt, 'lease.owner': posting.lease.owner },
      { $set: posted },
    );
    if (result.matchedCount !== 1) throw new LeaseLost();
    return { ...posting, ...posted };
  }

  // ---- planning ------------------------------------------------------------------------

  private plan(commands: readonly UsageEventCommand[], originals: number[], terms: EffectiveTerms[], origin: RequestOrigin) {
    const lease = { owner: this.newLeaseOwner(), expiresAt: new Date(Date.now() + this.deps.leaseMs) };
    const expiresAt = new Date(origin.receivedAt.getTime() + this.deps.retentionDays * 86_400_000);
    // The creation time leads the id: a retry that finds events without their posting can
    // tell a writer still at work from one that died (see awaitPosting).
    const prefix = `${origin.receivedAt.getTime().toString(36)}-${randomUUID()}`;
    const byGroup = new Map<string, PostingDoc>();
    const members: Member[] = [];
    const seqs = new Map<string, number>();
    originals.forEach((index, position) => {
      const command = commands[index]!;
      const resolved = terms[position]!;
      const refusal = resolved.hasAccess ? null : accessRefusal(resolved);
      const group = refusal === null ? resolved.counterId! : `${command.accountId}|${command.feature}|${refusal}`;
      let posting = byGroup.get(group);
      if (!posting) {
        posting = {
          _id: `${prefix}:${byGroup.size}`,
          accountId: command.accountId,
          feature: command.feature,
          counterId: refusal === null ? resolved.counterId : null,
          period: refusal === null ? resolved.period : null,
          refusal,
          state: 'RESERVED',
          attempt: 1,
          lease,
          actor: origin.actor,
          requestId: origin.requestId,
          receivedAt: origin.receivedAt,
          expiresAt,
        };
        byGroup.set(group, posting);
      }
      const seq = seqs.get(posting._id) ?? 0;
      seqs.set(posting._id, seq + 1);
      members.push({
        index,
        command,
        terms: resolved,
        doc: {
          _id: eventId(command.accountId, command.idempotencyKey),
          accountId: command.accountId,
          idempotencyKey: command.idempotencyKey,
          feature: command.feature,
          quantity: command.quantity,
          timestamp: command.timestamp,
          clientTimestamp: command.clientTimestamp,
          properties: command.properties,
          postingId: posting._id,
          seq,
        },
      });
    });
    return { postings: [...byGroup.values()], members };
  }

  private async insertPostings(postings: PostingDoc[]): Promise<void> {
    if (postings.length === 1) await this.ledger.postings.insertOne(postings[0]!);
    else await this.ledger.postings.insertMany(postings, { ordered: false });
  }

  /** Terms at each event's own timestamp (R8: an event counts in the period of its timestamp). */
  private resolveTerms(
    resolver: TermsResolver,
    events: ReadonlyArray<{ accountId: string; feature: string; timestamp: Date }>,
  ): Promise<EffectiveTerms[]> {
    return resolver(events.map(({ accountId, feature, timestamp }) => ({ accountId, feature, at: timestamp })));
  }

  private async loadStored(ids: string[]): Promise<Map<string, UsageEventDoc>> {
    const docs = await this.ledger.events.find({ _id: { $in: ids } }).toArray();
    return new Map(docs.map((doc) => [doc._id, doc]));
  }

  private async awaitPostings(ids: string[]): Promise<Map<string, PostingDoc>> {
    const postings = await Promise.all(ids.map((id) => this.awaitPosting(id)));
    return new Map(postings.flatMap((posting) => (posting ? [[posting._id, posting] as const] : [])));
  }

  private async duplicateReceipt(command: UsageEventCommand, stored: UsageEventDoc, origin: RequestOrigin): Promise<UsageReceiptView> {
    if (!samePayload(command, stored)) {
      throw new IdempotencyKeyReusedError(
        `idempotencyKey "${command.idempotencyKey}" was already used for account "${command.accountId}" with a different payload; use a new key for a different event.`,
      );
    }
    const posting = await this.awaitPosting(stored.postingId);
    if (!posting || !hasOutcome(posting, stored)) return (await this.recordOrphansAgain([stored], [command], origin))[0]!;
    const receipt = receiptOf(posting, stored, 'DUPLICATE');
    await this.deps.audit.recordMany([duplicateAuditEntry(receipt, origin, 0, 1)]);
    return receipt;
  }

  /**
   * Events that were never counted: their posting was never written (the writer died
   * between the two inserts), or it was settled without them (the writer stalled past its
   * lease and a recoverer settled it empty; a stale increment is undone by the sweeper).
   * They are removed and recorded afresh, once.
   */
  private async recordOrphansAgain(orphans: UsageEventDoc[], commands: UsageEventCommand[], origin: RequestOrigin): Promise<UsageReceiptView[]> {
    this.deps.logger.warn({ events: orphans.map((event) => event._id) }, 're-recording events orphaned by a stalled writer');
    await Promise.all(orphans.map((event) => this.ledger.events.deleteOne({ _id: event._id, postingId: event.postingId })));
    return this.ingest(commands, origin);
  }

  /** A write of several postings dies if a fault is armed for any of their accounts. */
  private fault(point: WritePoint, postings: readonly PostingDoc[]): void {
    for (const accountId of new Set(postings.map((posting) => posting.accountId))) this.deps.faults.after(point, accountId);
  }

  private newLeaseOwner(): string {
    return `${this.deps.instanceId}/${randomUUID()}`;
  }
}

// ---- pure helpers --------------------------------------------------------------------

function sameCommandPayload(a: UsageEventCommand, b: UsageEventCommand): boolean {
  return samePayload(a, { ...b, _id: '', postingId: '', seq: 0 });
}

/** Refusals that are errors for the whole request rather than REJECTED receipts. */
function assertRecordable(command: UsageEventCommand, terms: EffectiveTerms, position: number | undefined): void {
  const where = position === undefined ? '' : `events[${position}]: `;
  if (terms.access === 'UNKNOWN_FEATURE' || terms.featureType === null) {
    throw new BadInputError(`${where}feature "${command.feature}" is not defined in the catalog; define it with defineFeature first.`, {
      field: 'feature',
    });
  }
  if (terms.featureType === 'BOOLEAN') {
    throw new BadInputError(`${where}feature "${command.feature}" is BOOLEAN: usage can only be recorded for METERED features.`, {
      field: 'feature',
    });
  }
  if (terms.hasAccess && (terms.counterId === null || terms.period === null)) {
    throw new Error(`terms for ${command.accountId}/${command.feature} grant access without a usage period`);
  }
}

function accessRefusal(terms: EffectiveTerms): DecisionReason {
  return terms.access === 'ENTITLED' ? 'NOT_ENTITLED' : terms.access;
}

/** When a posting id was minted (its base-36 prefix); 0 for ids without one (old enough). */
function postingCreatedAt(postingId: string): number {
  const time = Number.parseInt(postingId.slice(0, postingId.indexOf('-')), 36);
  return Number.isFinite(time) ? time : 0;
}

/** Whether usage from `used` on, counting every member, goes beyond an included amount. */
function beyondIncluded(terms: readonly MemberTerms[], used: Micros): boolean {
  let running = used;
  for (const member of terms) {
    running += member.quantity;
    if (member.terms.hasAccess && member.terms.included !== null && running > member.terms.included) return true;
  }
  return false;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
