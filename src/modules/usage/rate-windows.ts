import type { Collection, Db } from 'mongodb';
import { isDuplicateKeyError, type CollectionIndexes } from '../../db/mongo.js';
import { toMicros, type Micros } from '../../shared/quantity.js';
import type { RateWindow } from '../../shared/rate-window.js';

export const RATE_WINDOWS = 'usage_rate_windows';

/** One posting's use of a window: `inc` units (negative for a release), `${posting}` or `${posting}~r`. */
export interface RateEntry {
  id: string;
  inc: Micros;
  /** Members (by seq) the window refused, for a resumed attempt to adopt the same decision. */
  limited: number[];
}

/**
 * R19: one document per (account, feature, window size, window start), `count` the units
 * it admitted. Every change is one guarded update, so the limit holds across instances.
 * `entries` lists the postings applied here whose settling has not finished: applying
 * one again is a no-op, and recovery adopts it (see rate-gate.ts).
 */
export interface RateWindowDoc {
  _id: string;
  accountId: string;
  feature: string;
  window: RateWindow;
  start: Date;
  end: Date;
  count: Micros;
  entries: RateEntry[];
}

export const rateWindowIndexes: CollectionIndexes = {
  collection: RATE_WINDOWS,
  // Windows that ended are deleted when the next window of the pair opens (deleteEnded).
  indexes: [{ key: { accountId: 1, feature: 1, end: 1 }, name: 'by_account_feature_end' }],
};

export class RateWindows {
  private readonly windows: Collection<RateWindowDoc>;

  constructor(db: Db) {
    this.windows = db.collection<RateWindowDoc>(RATE_WINDOWS);
  }

  async get(id: string): Promise<RateWindowDoc | null> {
    return this.windows.findOne({ _id: id });
  }

  /** Counts by window id, for checks (read only). */
  async counts(ids: readonly string[]): Promise<Map<string, { count: Micros; end: Date }>> {
    const docs = await this.windows.find({ _id: { $in: [...ids] } }, { projection: { count: 1, end: 1 } }).toArray();
    return new Map(docs.map((doc) => [doc._id, { count: toMicros(doc.count), end: doc.end }]));
  }

  /**
   * Adds `entry.inc` to the window only if `count <= guard` (every admitted unit then
   * fits under the limit) and the entry is not there yet; creates the window on first
   * use. The pre-image, null when created, or 'not-applied'.
   */
  async consume(
    window: Pick<RateWindowDoc, '_id' | 'accountId' | 'feature' | 'window' | 'start' | 'end'>,
    entry: RateEntry,
    guard: Micros,
  ): Promise<RateWindowDoc | null | 'not-applied'> {
    const { _id, ...fields } = window;
    try {
      return await this.windows.findOneAndUpdate(
        { _id, count: { $lte: guard }, 'entries.id': { $ne: entry.id } },
        { $inc: { count: entry.inc }, $push: { entries: entry }, $setOnInsert: fields },
        { upsert: true, returnDocument: 'before' },
      );
    } catch (error) {
      // The window exists and the filter did not match: the upsert collided on _id.
      if (isDuplicateKeyError(error)) return 'not-applied';
      throw error;
    }
  }

  /** Gives units back (quota-refused members), at most once per posting. */
  async release(id: string, postingId: string, units: Micros): Promise<void> {
    const releaseId = `${postingId}~r`;
    await this.windows.updateOne(
      { _id: id, 'entries.id': { $ne: releaseId } },
      { $inc: { count: -units }, $push: { entries: { id: releaseId, inc: -units, limited: [] } } },
    );
  }

  /** Housekeeping once the posting is POSTED: its entries are no longer needed. */
  async pull(id: string, postingId: string): Promise<void> {
    await this.windows.updateOne({ _id: id }, { $pull: { entries: { id: { $in: [postingId, `${postingId}~r`] } } } });
  }

  /** Windows of the pair that have ended (called when a new one opens). */
  async deleteEnded(accountId: string, feature: string, now: Date): Promise<void> {
    await this.windows.deleteMany({ accountId, feature, end: { $lte: now } });
  }
}
