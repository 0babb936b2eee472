import { createHash } from 'node:crypto';
import { MongoBulkWriteError, ObjectId, type Collection, type Db } from 'mongodb';
import { isDuplicateKeyError, type CollectionIndexes } from '../../db/mongo.js';
import type { Micros } from '../../shared/quantity.js';
import { COUNTERS, counterIndexes, type CounterDoc } from './counters.js';
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

export class UsageLedger {
  readonly events: Collection<UsageEventDoc>;
  readonly postings: Collection<PostingDoc>;
  readonly counters: Collection<CounterDoc>;

  constructor(db: Db) {
    this.events = db.collection<UsageEventDoc>(EVENTS);
    this.postings = db.collection<PostingDoc>(POSTINGS);
    this.counters = db.collection<CounterDoc>(COUNTERS);
  }

  /**
   * insertMany(ordered: false): every event that does not collide is written; the
   * positions that hit the unique index come back. Judged by writeErrors and code 11000
   * only: the stand-in's insertedCount also counts failed documents.
   */
  async insertEvents(docs: UsageEventDoc[]): Promise<Set<number>> {
    const collided = new Set<number>();
    if (docs.length === 0) return collided;
    try {
      if (docs.length === 1) await this.events.insertOne(docs[0]!);
      else await this.events.insertMany(docs, { ordered: false });
    } catch (error) {
      if (docs.length === 1 && isDuplicateKeyError(error)) {
        collided.add(0);
        return collided;
      }
      if (!(error instanceof MongoBulkWriteError)) throw error;
      const writeErrors = Array.isArray(error.writeErrors) ? error.writeErrors : [error.writeErrors];
      for (const writeError of writeErrors) {
        if (writeError.code !== 11000) throw error;
        collided.add(writeError.index);
      }
    }
    return collided;
  }

  async membersOf(postingId: string): Promise<UsageEventDoc[]> {
    const events = await this.events.find({ postingId }).toArray();
    return events.sort((a, b) => a.seq - b.seq);
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
    mayCreate: boolean;
  }): Promise<CounterDoc | null | 'not-applied'> {
    const { entry } = args;
    const now = entry.at;
    const inc: Record<string, Micros> = { used: entry.inc };
    for (const [hour, quantity] of Object.entries(entry.hours)) inc[`hours.${hour}`] = quantity;
    const filter: Record<string, unknown> = { _id: args.counterId, 'pending.id': { $ne: entry.id } };
    if (args.guard !== null) filter.used = { $lte: args.guard };
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

  async pullPending(counterId: string, entryId: string): Promise<void> {
    await this.counters.updateOne({ _id: counterId }, { $pull: { pending: { id: entryId } } });
  }

  /**
   * Undoes a stale write: an attempt that landed after its posting was settled another
   * way. Atomic with removing its entry, so it happens at most once.
   */
  async compensate(counterId: string, entry: PendingEntry): Promise<boolean> {
    const inc: Record<string, Micros> = { used: -entry.inc };
    for (const [hour, quantity] of Object.entries(entry.hours)) inc[`hours.${hour}`] = -quantity;
    const result = await this.counters.updateOne(
      { _id: counterId, 'pending.id': entry.id },
      { $inc: inc, $pull: { pending: { id: entry.id } }, $set: { updatedAt: new Date() } },
    );
    return result.modifiedCount === 1;
  }

  /** Rating (issue 8) calls this when a period's invoice becomes final (R8). */
  async markPeriodFinal(counter: { counterId: string; accountId: string; feature: string; periodStart: Date; periodEnd: Date | null }, at = new Date()): Promise<void> {
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
