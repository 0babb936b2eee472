import type { Collection, Db, Filter } from 'mongodb';
import { insertUnlessPresent, isDuplicateKeyError, type CollectionIndexes } from '../../db/mongo.js';
import { armId, parseAlertDoc, type AlertDoc, type ArmDoc, type BalanceChangeDoc } from './model.js';

export const ALERTS = 'usage_alerts';
export const ARMS = 'alert_arms';
export const BALANCE_CHANGES = 'balance_changes';

export const alertIndexes: CollectionIndexes[] = [
  {
    collection: ALERTS,
    indexes: [
      { key: { accountId: 1, triggeredAt: -1 }, name: 'by_account' },
      { key: { accountId: 1, feature: 1, triggeredAt: -1 }, name: 'by_account_feature' },
      // The polling feed (servers without change streams) reads a recent time window.
      { key: { triggeredAt: 1 }, name: 'by_time' },
    ],
  },
  {
    collection: BALANCE_CHANGES,
    indexes: [
      { key: { at: 1 }, name: 'by_time' },
      { key: { expiresAt: 1 }, name: 'by_expiry' },
    ],
  },
];

export class AlertRepository {
  readonly alerts: Collection<AlertDoc>;
  readonly arms: Collection<ArmDoc>;
  readonly balanceChanges: Collection<BalanceChangeDoc>;

  constructor(db: Db) {
    this.alerts = db.collection<AlertDoc>(ALERTS);
    this.arms = db.collection<ArmDoc>(ARMS);
    this.balanceChanges = db.collection<BalanceChangeDoc>(BALANCE_CHANGES);
  }

  /** Current arm epoch of each threshold of a counter (0 when never re-armed). */
  async epochs(counterId: string, thresholds: readonly number[]): Promise<Map<number, number>> {
    const epochs = new Map(thresholds.map((t) => [t, 0]));
    if (thresholds.length === 0) return epochs;
    const docs = await this.arms.find({ _id: { $in: thresholds.map((t) => armId(counterId, t)) } }).toArray();
    for (const doc of docs) epochs.set(doc.threshold, doc.epoch);
    return epochs;
  }

  /**
   * Moves one threshold from epoch `from` to `from + 1` unless someone already moved it,
   * and returns the epoch now current: racing callers all end up on the same one.
   */
  async advanceEpoch(counterId: string, threshold: number, from: number): Promise<number> {
    const _id = armId(counterId, threshold);
    const updatedAt = new Date();
    if (from === 0) {
      try {
        await this.arms.insertOne({ _id, counterId, threshold, epoch: 1, updatedAt });
      } catch (error) {
        if (!isDuplicateKeyError(error)) throw error;
      }
    } else {
      await this.arms.updateOne({ _id, epoch: from }, { $set: { epoch: from + 1, updatedAt } });
    }
    return (await this.arms.findOne({ _id }))?.epoch ?? from + 1;
  }

  async alertById(id: string): Promise<AlertDoc | null> {
    const doc = await this.alerts.findOne({ _id: id });
    return doc ? parseAlertDoc(doc) : null;
  }

  async alertsByIds(ids: readonly string[]): Promise<AlertDoc[]> {
    if (ids.length === 0) return [];
    return (await this.alerts.find({ _id: { $in: [...ids] } }).toArray()).map(parseAlertDoc);
  }

  /** Inserts an alert; false when that id already exists (it fired before). */
  async insertAlert(alert: AlertDoc): Promise<boolean> {
    return insertUnlessPresent(this.alerts, alert);
  }

  /** Newest first; at the same instant the higher threshold fired last. */
  async list(accountId: string, feature: string | undefined, first: number): Promise<AlertDoc[]> {
    const filter: Filter<AlertDoc> = { accountId };
    if (feature !== undefined) filter.feature = feature;
    const docs = await this.alerts.find(filter).sort({ triggeredAt: -1, threshold: -1 }).limit(first).toArray();
    return docs.map(parseAlertDoc);
  }

  async insertBalanceChanges(changes: readonly BalanceChangeDoc[]): Promise<void> {
    if (changes.length > 0) await this.balanceChanges.insertMany([...changes], { ordered: false });
  }

  /** Deletes expired feed rows; returns how many. */
  async sweepBalanceChanges(now = new Date()): Promise<number> {
    const { deletedCount } = await this.balanceChanges.deleteMany({ expiresAt: { $lt: now } });
    return deletedCount;
  }
}
