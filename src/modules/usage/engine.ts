import type { Logger } from '../../logger.js';
import { IdempotencyKeyReusedError } from '../../shared/errors.js';
import type { AuditInput, AuditLog } from '../audit/index.js';
import type { FaultInjector, WritePoint } from './faults.js';
import type { GaugeLedger } from './gauge-ledger.js';
import { GuardedUpdate } from './guarded-update.js';
import type { UsagePublisher } from './events.js';
import { eventId, samePayload } from './idempotency.js';
import { newLease } from './lease.js';
import { prepareTerms } from './member-terms.js';
import type { PostingDoc, UsageEventCommand, UsageEventDoc, UsageReceiptView } from './model.js';
import { assertRecordable, inRequestDuplicates, planPostings, resolveTerms, type Member, type RequestOrigin } from './plan.js';
import { duplicateAuditEntry, hasOutcome, outcomeOf, receiptOf } from './receipts.js';
import { PostingRecovery } from './recovery.js';
import type { UsageLedger } from './repository.js';
import type { RateWindows } from './rate-windows.js';
import { PostingSettler } from './settle.js';
import type { Decide, GrantedCapacity, OpenTerms } from './terms.js';

export type { RequestOrigin } from './plan.js';
export { UsageInProgressError } from './recovery.js';

/**
 * The ingestion engine: R6 and R7 without multi-document transactions (SPEC §6).
 *
 * A request becomes postings, one per counter it touches. Each posting goes:
 *
 *   1. insert the posting RESERVED with a lease (the unit of work and of recovery) and,
 *      together, its events, whose unique _id turns retries into duplicates   plan.ts
 *   2. one guarded counter update per posting ($inc + $push pending entry)    guarded-update.ts
 *   3. together: CounterChanged published            (alerts' exactly-once point)
 *      and audit entries with deterministic ids         (a replay cannot duplicate them)
 *   4. mark the posting POSTED, fenced on owner+attempt; answer the request
 *   5. pull the pending entry (housekeeping, off the request path)            3–5: settle.ts
 *
 * A crash between any two writes leaves the posting RESERVED; once its lease expires, the
 * next touch (a retry) or the sweeper takes it over (attempt + 1) and resumes from step 2,
 * adopting the increment if a previous attempt's entry is already in `pending`
 * (recovery.ts). Events written without their posting were never counted; a retry
 * records them afresh. The crash points of faults.ts sit right after these writes.
 *
 * Issue 19: steps 1, 3 (audit), 4 and 5 of all the postings in flight in one event-loop
 * turn share one command each (src/db/grouped-insert.ts, turn-batch.ts). That changes when
 * a write is sent, not what it writes or what waits for it: each posting goes on only
 * once its own write is acknowledged, so the crash states above are the only ones.
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
  /** R16: gauge level documents. */
  gauges: GaugeLedger;
  audit: AuditLog;
  /** Publishes CounterChanged at the exactly-once point. */
  events: UsagePublisher;
  faults: FaultInjector;
  plugins: EnginePlugins;
  logger: Logger;
  leaseMs: number;
  retentionDays: number;
  instanceId: string;
  /** R19's rate windows (rate-gate.ts); absent: nothing is rate limited. */
  rateWindows?: RateWindows;
}

export class UsageEngine {
  private readonly settler: PostingSettler;
  private readonly recovery: PostingRecovery;

  constructor(private readonly deps: EngineDeps) {
    this.settler = new PostingSettler(deps, new GuardedUpdate(deps));
    this.recovery = new PostingRecovery(deps, this.settler);
  }

  /**
   * Records events (one for recordUsage, up to 1,000 for a batch) and returns one receipt
   * per input position. Everything that can be refused is refused before the first write.
   */
  async ingest(
    commands: readonly UsageEventCommand[],
    origin: RequestOrigin,
    /** recordUsageBatch, even of one event: refusals then name the event by position. */
    batch = commands.length > 1,
  ): Promise<UsageReceiptView[]> {
    const { ledger } = this.deps;
    // In-request duplicates: the first occurrence is the original (R7 within one batch).
    const { originals, duplicateOf } = inRequestDuplicates(commands);

    // recordUsage: a retry is by far the most common duplicate; one read spares it a posting.
    if (commands.length === 1) {
      const stored = await ledger.event(eventId(commands[0]!.accountId, commands[0]!.idempotencyKey));
      if (stored) return [await this.duplicateReceipt(commands[0]!, stored, origin)];
    }

    const terms = await resolveTerms(
      this.deps.plugins.openTerms(),
      originals.map((index) => commands[index]!),
    );
    originals.forEach((index, position) => {
      assertRecordable(commands[index]!, terms[position]!, batch ? index : undefined);
    });
    const receipts: Array<UsageReceiptView | undefined> = new Array(commands.length);

    const lease = newLease(this.deps.instanceId, this.deps.leaseMs);
    const { postings, members } = planPostings(commands, originals, terms, origin, lease, this.deps.retentionDays);
    // Granted capacity does not depend on which events turn out to be duplicates: it is
    // fetched while the posting and the events are written.
    const prepared = prepareTerms(this.deps.plugins, postings, members);
    // §6 step 1. The postings and their events are written together. If the process dies
    // with the events written and not their posting, those events were never counted: a
    // retry finds them without a posting once a lease has passed and records them afresh
    // (awaitPosting).
    const [, collided] = await Promise.all([ledger.insertPostings(postings), ledger.insertEvents(members.map((member) => member.doc))]);
    this.fault('events.inserted', postings);

    // R7 idempotency: an event that hit the unique index is a retry (same payload) or a
    // reused key (different payload); either way it is not a member of the new posting.
    const stored = collided.size > 0 ? await ledger.eventsByIds([...collided].map((position) => members[position]!.doc._id)) : new Map();
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

    // §6 steps 2–5 for each posting (settle.ts), or its outcome if a takeover took it.
    const settled = await Promise.all(
      postings.map((posting) =>
        this.recovery.settleOrAwait(posting, membersByPosting.get(posting._id)!, origin, false, prepared.get(posting._id)),
      ),
    );
    const orphans: Array<{ member: Member; doc: UsageEventDoc }> = [];
    for (const { posting, final } of settled) {
      for (const member of membersByPosting.get(posting._id)!) {
        if (hasOutcome(final, member.doc)) receipts[member.index] = receiptOf(final, member.doc, null);
        else orphans.push({ member, doc: member.doc });
      }
    }

    // Retries of events stored earlier: the original receipt, as DUPLICATE (R7).
    const duplicateAudit: AuditInput[] = [];
    const storedFinal = await this.recovery.awaitPostings([...new Set(storedDuplicates.map(({ stored: doc }) => doc.postingId))]);
    for (const { member, stored: doc } of storedDuplicates) {
      const posting = storedFinal.get(doc.postingId);
      if (posting && hasOutcome(posting, doc)) receipts[member.index] = receiptOf(posting, doc, 'DUPLICATE');
      else orphans.push({ member, doc });
    }
    if (orphans.length > 0) {
      const again = await this.recordOrphansAgain(
        orphans.map(({ doc }) => doc),
        orphans.map(({ member }) => member.command),
        origin,
      );
      orphans.forEach(({ member }, i) => {
        receipts[member.index] = again[i];
      });
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

  /** Resumes a posting whose lease this process now holds (after `takeOver`); the sweeper's entry. */
  resume(posting: PostingDoc): Promise<PostingDoc> {
    return this.recovery.resume(posting);
  }

  /** Takes over an expired lease; null when the posting is settled or someone else holds it. */
  takeOver(postingId: string, seenAttempt?: number): Promise<PostingDoc | null> {
    return this.recovery.takeOver(postingId, seenAttempt);
  }

  /** Waits for a posting to be POSTED, taking it over if its owner's lease expires. */
  awaitPosting(postingId: string): Promise<PostingDoc | null> {
    return this.recovery.awaitPosting(postingId);
  }

  /** Waits for pulls still in flight (before the database closes). */
  drain(): Promise<void> {
    return this.settler.drain();
  }

  private async duplicateReceipt(command: UsageEventCommand, stored: UsageEventDoc, origin: RequestOrigin): Promise<UsageReceiptView> {
    if (!samePayload(command, stored)) {
      throw new IdempotencyKeyReusedError(
        `idempotencyKey "${command.idempotencyKey}" was already used for account "${command.accountId}" with a different payload; use a new key for a different event.`,
      );
    }
    const posting = await this.recovery.awaitPosting(stored.postingId);
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
  private async recordOrphansAgain(
    orphans: UsageEventDoc[],
    commands: UsageEventCommand[],
    origin: RequestOrigin,
  ): Promise<UsageReceiptView[]> {
    this.deps.logger.warn({ events: orphans.map((event) => event._id) }, 're-recording events orphaned by a stalled writer');
    await Promise.all(orphans.map((event) => this.deps.ledger.deleteOrphan(event)));
    return this.ingest(commands, origin);
  }

  /** A write of several postings dies if a fault is armed for any of their accounts. */
  private fault(point: WritePoint, postings: readonly PostingDoc[]): void {
    for (const accountId of new Set(postings.map((posting) => posting.accountId))) this.deps.faults.after(point, accountId);
  }
}
