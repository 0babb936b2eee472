import type { Collection, Db } from 'mongodb';
import { isDuplicateKeyError } from '../../db/mongo.js';
import type { Micros } from '../../shared/quantity.js';
import { COUNTERS, type CounterDoc } from './counters.js';
import type { PendingEntry } from './model.js';

/** The gauge level documents: the usage counters collection, written by compare-and-set. */
export class GaugeLedger {
  private readonly counters: Collection<CounterDoc>;

  constructor(db: Db) {
    this.counters = db.collection<CounterDoc>(COUNTERS);
  }

  read(levelId: string): Promise<CounterDoc | null> {
    return this.counters.findOne({ _id: levelId });
  }

  /**
   * One atomic write: the level moves by the entry's change, `seq` by one, the periods'
   * peaks by `$max` and their last levels by `$set`, and the pending entry is pushed.
   * Applies only if `seq` is still `expectSeq` (null: the document does not exist yet)
   * and this attempt is not already in `pending`. False when someone else was first.
   */
  async apply(args: {
    levelId: string;
    accountId: string;
    feature: string;
    entry: PendingEntry;
    expectSeq: number | null;
    /** The level read with `expectSeq`: a stale write's undo (the sweeper) moves it without `seq`. */
    expectUsed: Micros;
    peaks: Record<string, Micros>;
    levels: Record<string, Micros>;
  }): Promise<boolean> {
    const { entry } = args;
    const inc: Record<string, Micros | number> = { used: entry.inc, seq: 1 };
    for (const [hour, quantity] of Object.entries(entry.hours)) inc[`hours.${hour}`] = quantity;
    const max: Record<string, Micros> = {};
    for (const [key, peak] of Object.entries(args.peaks)) max[`peaks.${key}`] = peak;
    const set: Record<string, Micros | Date> = { updatedAt: entry.at };
    for (const [key, level] of Object.entries(args.levels)) set[`levels.${key}`] = level;
    const filter: Record<string, unknown> = {
      _id: args.levelId,
      'pending.id': { $ne: entry.id },
      seq: args.expectSeq === null ? { $exists: false } : args.expectSeq,
      ...(args.expectSeq === null ? {} : { used: args.expectUsed }),
    };
    try {
      const result = await this.counters.updateOne(
        filter,
        {
          $inc: inc,
          ...(Object.keys(max).length > 0 ? { $max: max } : {}),
          $set: set,
          $push: { pending: entry },
          $setOnInsert: {
            accountId: args.accountId,
            feature: args.feature,
            periodStart: new Date(0),
            periodEnd: null,
            createdAt: entry.at,
          },
        },
        { upsert: args.expectSeq === null },
      );
      return result.modifiedCount === 1 || result.upsertedCount === 1;
    } catch (error) {
      // Created meanwhile by another writer: the upsert collided on _id.
      if (isDuplicateKeyError(error)) return false;
      throw error;
    }
  }
}
