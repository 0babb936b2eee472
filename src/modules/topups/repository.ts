import type { Collection, Db } from 'mongodb';
import type { CollectionIndexes } from '../../db/mongo.js';
import type { AutoTopUpDoc } from './model.js';

export const AUTO_TOP_UPS = 'auto_top_ups';

export const topUpIndexes: CollectionIndexes = {
  collection: AUTO_TOP_UPS,
  // The repair pass walks the enabled settings in _id order.
  indexes: [{ key: { enabled: 1, _id: 1 }, name: 'by_enabled' }],
};

export class TopUpRepository {
  private readonly collection: Collection<AutoTopUpDoc>;

  constructor(db: Db) {
    this.collection = db.collection<AutoTopUpDoc>(AUTO_TOP_UPS);
  }

  /** Replaces the setting; returns the one it replaced, or null. */
  replace(doc: AutoTopUpDoc): Promise<AutoTopUpDoc | null> {
    return this.collection.findOneAndReplace({ _id: doc._id }, doc, { upsert: true, returnDocument: 'before' });
  }

  find(id: string, comment?: string): Promise<AutoTopUpDoc | null> {
    return this.collection.findOne({ _id: id }, comment ? { comment } : {});
  }

  byAccount(accountId: string): Promise<AutoTopUpDoc[]> {
    return this.collection.find({ accountId }).sort({ feature: 1 }).toArray();
  }

  /** Enabled settings after `afterId`, in _id order (the repair pass pages through them). */
  enabledAfter(afterId: string, limit: number, comment: string): Promise<AutoTopUpDoc[]> {
    return this.collection
      .find({ enabled: true, _id: { $gt: afterId } }, { comment })
      .sort({ _id: 1 })
      .limit(limit)
      .toArray();
  }
}
