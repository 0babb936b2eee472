import { createHash } from 'node:crypto';
import { ObjectId, type Collection, type Db, type Filter } from 'mongodb';
import { coalescedReader } from '../../db/coalesce.js';
import { GroupedInsert } from '../../db/grouped-insert.js';
import { isDuplicateKeyError, type CollectionIndexes } from '../../db/mongo.js';
import type { Micros } from '../../shared/quantity.js';
import { COUNTERS, counterIndexes, type CounterDoc } from './counters.js';
import { burnIncrements, counterIdPrefixPattern } from './counter-paths.js';
import { postedBy } from './posted-by.js';
import type { PendingEntry, PostingDoc, UsageEventDoc } from './model.js';

export const EVENTS = 'usage_events';
export const POSTINGS = 'usage_postings';

/**
 * No TTL indexes (the stand-in never expires anything, SPEC §5): postings carry
 * `expiresAt` and the sweeper deletes them and their events. No partial indexes either,
 * so every index here covers the whole collection.
 */
export const usageIndexes: CollectionIndexes[] = [
  {
    collection: EVENTS,
    // _id is the idempotency index. Events are written 1,000 at a time, so they carry the
    // one secondary index recovery and reconciliation need, and nothing else: a single
    // field (a posting's at most 1,000 members are sorted by seq in memory).
    indexes: [{ key: { postingId: 1 }, name: 'by_posting_id' }],
  },
  {
    collection: POSTINGS,
    indexes: [
      { key: { state: 1, 'lease.expiresAt': 1 }, name: 'by_state_lease' },
      { key: { counterId: 1 }, name: 'by_counter' },
      { key: { expiresAt: 1 }, name: 'by_expiry' },
    ],
  },
  counterIndexes,
];

/**
 * Every read and write of the usage ledger's three collections: events, postings and
 * counters. The engine, the sweeper, reconciliation and the service speak to MongoDB only
 * through these named methods, so each exactly-once write (SPEC §6) has one home.
 */
export class UsageLedger {
  private readonly events: Collection<UsageEventDoc>;
  private readonly postings: Collection<PostingDoc>;
  private readonly counters: Collection<CounterDoc>;
  private readonly eventInserts: GroupedInsert<UsageEventDoc>;
  private readonly postingInserts: GroupedInsert<PostingDoc>;

  constructor(db: Db) {
    this.events = db.collection<UsageEventDoc>(EVENTS);
    this.postings = db.collection<PostingDoc>(POSTINGS);
    this.counters = db.collection<CounterDoc>(COUNTERS);
    this.eventInserts = new GroupedInsert(this.events);
    this.postingInserts = new GroupedInsert(this.postings);
  }

  /**
   * recordUsage's retry pre-check, one `find` per event-loop turn for every request in
   * flight (src/db/coalesce.ts: nothing cached, so a retry still sees its first write).
   */
  private readonly eventById = coalescedReader<string, UsageEventDoc | null>(async (ids) => {
    const found = new Map((await this.events.find({ _id: { $in: [...ids] } }).toArray()).map((doc) => [doc._id, doc]));
    return ids.map((id) => found.get(id) ?? null);
  });

  /**
   * insertMany(ordered: false), with the other requests' events of this turn (issue 19,
   * src/db/grouped-insert.ts): every event that does not collide is written; the positions
   * that hit the unique index come back. Judged by writeErrors and code 11000 only: the
   * stand-in's insertedCount also counts failed documents.
   */
  async insertEvents(docs: UsageEventDoc[]): Promise<Set<number>> {
    return this.eventInserts.insert(docs);
  }

  /** The stored event with this id (R7: the same key again is a retry). */
  async event(eventId: string): Promise<UsageEventDoc | null> {
    return this.eventById.load(eventId);
  }

  /** Stored events by id, for the members of a request that collided on the unique index. */
  async eventsByIds(ids: string[]): Promise<Map<string, UsageEventDoc>> {
    const docs = await this.events.find({ _id: { $in: ids } }).toArray();
    return new Map(docs.map((doc) => [doc._id, doc]));
  }

  async membersOf(postingId: string): Promise<UsageEventDoc[]> {
    const events = await this.events.find({ postingId }).toArray();
    return events.sort((a, b) => a.seq - b.seq);
  }

  /** Removes an event that was never counted, only while it still belongs to that posting. */
  async deleteOrphan(event: Pick<UsageEventDoc, '_id' | 'postingId'>): Promise<void> {
    await this.events.deleteOne({ _id: event._id, postingId: event.postingId });
  }

  /** The events of these postings, streamed: what reconciliation sums. */
  eventsOfPostings(
    postingIds: string[],
  ): AsyncIterable<Pick<UsageEventDoc, '_id' | 'postingId' | 'seq' | 'quantity' | 'timestamp' | 'feature' | 'creditsPerUnit'>> {
    const projection = { postingId: 1, seq: 1, quantity: 1, timestamp: 1, feature: 1, creditsPerUnit: 1 };
    return this.events.find({ postingId: { $in: postingIds } }, { projection });
  }

  /** §6 step 1: the postings of a request, RESERVED with their lease (grouped per turn, as events). */
  async insertPostings(postings: PostingDoc[]): Promise<void> {
    const collided = await this.postingInserts.insert(postings);
    if (collided.size > 0) throw new Error(`posting id collision in ${postings[0]!._id}`);
  }

  async posting(postingId: string): Promise<PostingDoc | null> {
    return this.postings.findOne({ _id: postingId });
  }

  /**
   * Takes over an expired lease atomically: the lease changes hands and the attempt
   * increments in one update. Returns the posting as it was before, or null when it is
   * settled, still leased, or (with `seenAttempt`) already taken over by someone else.
   */
  async takeOver(postingId: string, lease: PostingDoc['lease'], now: Date, seenAttempt?: number): Promise<PostingDoc | null> {
    const filter: Record<string, unknown> = { _id: postingId, state: 'RESERVED', 'lease.expiresAt': { $lt: now } };
    if (seenAttempt !== undefined) filter.attempt = seenAttempt;
    return this.postings.findOneAndUpdate(filter, { $set: { lease }, $inc: { attempt: 1 } }, { returnDocument: 'before' });
  }

  /** Extends the lease, fenced on owner and attempt; false when the posting was taken over. */
  async renewLease(posting: PostingDoc, expiresAt: Date): Promise<boolean> {
    const renewed = await this.postings.updateOne(fenced(posting), { $set: { 'lease.expiresAt': expiresAt } });
    return renewed.matchedCount === 1;
  }

  /**
   * Settles postings POSTED, each fenced on owner and attempt, in one command (issue 19);
   * false for one that was taken over. When not all matched, a read tells which did: only
   * this owner's attempt can have set that attempt's posting POSTED with this `postedAt`.
   */
  async markPosted(items: ReadonlyArray<{ posting: PostingDoc; posted: PostedFields }>): Promise<boolean[]> {
    const ops = items.map(({ posting, posted }) => ({ updateOne: { filter: fenced(posting), update: { $set: posted } } }));
    if ((await this.postings.bulkWrite(ops, { ordered: false })).matchedCount === items.length) return items.map(() => true);
    const found = await this.postings.find({ _id: { $in: items.map(({ posting }) => posting._id) } }).toArray();
    const now = new Map(found.map((doc) => [doc._id, doc]));
    return items.map(({ posting, posted }) => postedBy(now.get(posting._id), posting, posted));
  }

  /** RESERVED postings whose lease has run out: what the sweeper takes over. */
  async expiredLeases(limit: number, comment: string): Promise<Array<Pick<PostingDoc, '_id' | 'attempt'>>> {
    return this.postings
      .find({ state: 'RESERVED', 'lease.expiresAt': { $lt: new Date() } }, { projection: { _id: 1, attempt: 1 }, comment })
      .limit(limit)
      .toArray();
  }

  /** How these postings ended, as far as their counters' pending entries are concerned. */
  async postingStates(postingIds: string[]): Promise<Array<Pick<PostingDoc, '_id' | 'state' | 'appliedAs'>>> {
    return this.postings.find({ _id: { $in: postingIds } }, { projection: { state: 1, appliedAs: 1 } }).toArray();
  }

  async postingsOfCounter(counterId: string): Promise<PostingDoc[]> {
    return this.postings.find({ counterId }).toArray();
  }

  /** POSTED postings of these counters that landed in a period already final (R8). */
  async latePostings(
    counterIds: readonly string[],
  ): Promise<Array<Pick<PostingDoc, '_id' | 'counterId' | 'inc' | 'outcomes' | 'postedAt'>>> {
    return this.postings
      .find(
        { counterId: { $in: [...counterIds] }, late: true, state: 'POSTED' },
        { projection: { counterId: 1, inc: 1, outcomes: 1, postedAt: 1 } },
      )
      .toArray();
  }

  /** Whether a posting of (account, feature) received before `receivedBefore` is still RESERVED. */
  async hasReservedPosting(accountId: string, feature: string, receivedBefore: Date): Promise<boolean> {
    // R14: a burning feature's posting lands on the credit feature's counter (`account|feature|period`).
    const onCounter = { counterId: { $regex: counterIdPrefixPattern(accountId, feature) } };
    const posting = await this.postings.findOne(
      { state: 'RESERVED', accountId, receivedAt: { $lt: receivedBefore }, $or: [{ feature }, onCounter] },
      { projection: { _id: 1 } },
    );
    return posting !== null;
  }

  /** Settled postings past retention: the sweeper deletes them with their events. */
  async expiredPostings(limit: number, comment: string): Promise<string[]> {
    const expired = await this.postings
      .find({ expiresAt: { $lt: new Date() }, state: 'POSTED' }, { projection: { _id: 1 }, comment })
      .limit(limit)
      .toArray();
    return expired.map((posting) => posting._id);
  }

  async deletePostings(ids: string[]): Promise<void> {
    // Events first: a posting is never missing while its events exist.
    await this.events.deleteMany({ postingId: { $in: ids } });
    await this.postings.deleteMany({ _id: { $in: ids } });
  }

  /** The pre-image of the first counter update that matches, or what was found instead. */
  async counter(counterId: string): Promise<CounterDoc | null> {
    return this.counters.findOne({ _id: counterId });
  }

  /**
   * Step 2 of SPEC §6: one guarded, atomic update of the counter. It applies only if
   * this attempt is not already in `pending` (which makes a replay a no-op) and, for HARD
   * limits, only if `used <= guard`. Returns the counter as it was before, `null` when the
   * counter did not exist and was created, or 'not-applied' when the guard held it back.
   */
  async applyToCounter(args: {
    counterId: string;
    accountId: string;
    feature: string;
    periodStart: Date;
    periodEnd: Date | null;
    entry: PendingEntry;
    guard: Micros | null;
    /** R13: the pool member's share must be at most this before the update. */
    memberGuard?: Micros | null;
    mayCreate: boolean;
  }): Promise<CounterDoc | null | 'not-applied'> {
    const { entry } = args;
    const now = entry.at;
    const inc: Record<string, Micros> = { used: entry.inc };
    for (const [hour, quantity] of Object.entries(entry.hours)) inc[`hours.${hour}`] = quantity;
    const filter: Record<string, unknown> = { _id: args.counterId, 'pending.id': { $ne: entry.id } };
    if (args.guard !== null) filter.used = { $lte: args.guard };
    if (entry.member !== undefined) {
      inc[`members.${entry.member}`] = entry.inc;
      // A member that never drew has no field yet: "not above the guard" matches it too.
      if (args.memberGuard != null) filter[`members.${entry.member}`] = { $not: { $gt: args.memberGuard } };
    }
    if (entry.burn) Object.assign(inc, burnIncrements(entry.burn, 1n));
    try {
      const before = await this.counters.findOneAndUpdate(
        filter,
        {
          $inc: inc,
          $push: { pending: entry },
          $set: { updatedAt: now },
          $setOnInsert: {
            accountId: args.accountId,
            feature: args.feature,
            periodStart: args.periodStart,
            periodEnd: args.periodEnd,
            createdAt: now,
          },
        },
        // 'before', never 'after' (SPEC §5): the pre-image is ours alone under concurrency.
        { upsert: args.mayCreate, returnDocument: 'before' },
      );
      if (before === null && !args.mayCreate) return 'not-applied';
      return before;
    } catch (error) {
      // The counter exists but the filter did not match: the upsert collided on _id.
      if (isDuplicateKeyError(error)) return 'not-applied';
      throw error;
    }
  }

  /** Pulls settled pending entries in one command (housekeeping: each pull is idempotent). */
  async pullPending(pulls: ReadonlyArray<{ counterId: string; entryId: string }>): Promise<void> {
    const update = ({ counterId, entryId }: { counterId: string; entryId: string }) => ({
      updateOne: { filter: { _id: counterId }, update: { $pull: { pending: { id: entryId } } } },
    });
    if (pulls.length > 0) await this.counters.bulkWrite(pulls.map(update), { ordered: false });
  }

  /**
   * Undoes a stale write: an attempt that landed after its posting was settled another
   * way. Atomic with removing its entry, so it happens at most once.
   */
  async compensate(counterId: string, entry: PendingEntry): Promise<boolean> {
    const inc: Record<string, Micros> = { used: -entry.inc };
    for (const [hour, quantity] of Object.entries(entry.hours)) inc[`hours.${hour}`] = -quantity;
    if (entry.member !== undefined) inc[`members.${entry.member}`] = -entry.inc;
    if (entry.burn) Object.assign(inc, burnIncrements(entry.burn, -1n));
    const result = await this.counters.updateOne(
      { _id: counterId, 'pending.id': entry.id },
      { $inc: inc, $pull: { pending: { id: entry.id } }, $set: { updatedAt: new Date() } },
    );
    return result.modifiedCount === 1;
  }

  /** Rating (issue 8) calls this when a period's invoice becomes final (R8). */
  async markPeriodFinal(
    counter: { counterId: string; accountId: string; feature: string; periodStart: Date; periodEnd: Date | null },
    at = new Date(),
  ): Promise<void> {
    await this.counters.updateOne(
      { _id: counter.counterId },
      {
        $set: { finalizedAt: at, updatedAt: at },
        $setOnInsert: {
          accountId: counter.accountId,
          feature: counter.feature,
          periodStart: counter.periodStart,
          periodEnd: counter.periodEnd,
          used: 0n,
          hours: {},
          pending: [],
          createdAt: at,
        },
      },
      { upsert: true },
    );
  }

  /**
   * Sets a drifted counter to what its events say, guarded on the `used` it observed and
   * an empty `pending`: a concurrent increment makes it fail (false) rather than be lost.
   */
  async repairCounter(
    counterId: string,
    observedUsed: CounterDoc['used'],
    used: Micros,
    hours: Record<string, Micros>,
    members?: Record<string, Micros>,
    burns?: CounterDoc['burns'],
  ): Promise<boolean> {
    const repaired = await this.counters.updateOne(
      { _id: counterId, used: observedUsed, 'pending.0': { $exists: false } },
      { $set: { used, hours, ...(members ? { members } : {}), ...(burns ? { burns } : {}), updatedAt: new Date() } },
    );
    return repaired.matchedCount === 1;
  }

  /** Counters holding pending entries older than `cutoff`: what the sweeper settles. */
  async countersWithPendingBefore(cutoff: Date, limit: number, comment: string): Promise<Array<Pick<CounterDoc, '_id' | 'pending'>>> {
    return this.counters
      .find({ 'pending.at': { $lt: cutoff } }, { projection: { pending: 1 }, comment })
      .limit(limit)
      .toArray();
  }

  /**
   * The hour buckets of the feature's counters whose period overlaps [start, end), and
   * (R14) its own units' buckets on the credit counters it burned.
   */
  async counterHours(accountId: string, feature: string, start: Date, end: Date): Promise<Array<Pick<CounterDoc, '_id' | 'hours'>>> {
    const docs = await this.counters
      .find(
        {
          accountId,
          $and: [
            { $or: [{ feature }, { [`burns.${feature}`]: { $exists: true } }] },
            { $or: [{ periodEnd: null }, { periodEnd: { $gt: start } }] },
          ],
          periodStart: { $lt: end },
        },
        { projection: { feature: 1, hours: 1, [`burns.${feature}.hours`]: 1 } },
      )
      .toArray();
    return docs.map((doc) => ({ _id: doc._id, hours: doc.feature === feature ? doc.hours : (doc.burns?.[feature]?.hours ?? {}) }));
  }

  /** The latest period starts of a feature's counters, newest first. */
  async recentPeriodStarts(accountId: string, feature: string, limit: number): Promise<Date[]> {
    const periods = await this.counters
      .find({ accountId, feature }, { projection: { periodStart: 1 } })
      .sort({ periodStart: -1 })
      .limit(limit)
      .toArray();
    return periods.map((counter) => counter.periodStart);
  }
}

/** What settling writes onto a posting (§6 step 3). */
export type PostedFields = Required<Pick<PostingDoc, 'appliedAs' | 'before' | 'inc' | 'late' | 'outcomes' | 'postedAt'>> & {
  state: 'POSTED';
} & Pick<PostingDoc, 'retryAfter'>;

/** R7 fencing: only the current owner of the current attempt may write a RESERVED posting. */
function fenced(posting: PostingDoc): Filter<PostingDoc> {
  return { _id: posting._id, state: 'RESERVED', attempt: posting.attempt, 'lease.owner': posting.lease.owner };
}

/**
 * Audit entries written by a step that recovery may replay get deterministic ids, so the
 * replay's insert collides instead of duplicating the entry. The first four bytes are the
 * seconds, like any ObjectId, so the audit log still pages newest first; the next two are
 * the milliseconds, so usage entries of one second keep their order too; a hash of `parts`
 * fills the last six.
 */
export function replayableAuditId(at: Date, ...parts: string[]): ObjectId {
  const bytes = Buffer.alloc(12);
  const ms = at.getTime();
  bytes.writeUInt32BE(Math.floor(ms / 1000), 0);
  bytes.writeUInt16BE(ms % 1000, 4);
  createHash('sha256').update(parts.join('\u0000')).digest().copy(bytes, 6, 0, 6);
  return new ObjectId(bytes);
}
