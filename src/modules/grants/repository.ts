import { createHash } from 'node:crypto';
import type DataLoader from 'dataloader';
import type { Collection, Db, Filter } from 'mongodb';
import { coalescedReader, loadAll } from '../../db/coalesce.js';
import { insertUnlessPresent, type CollectionIndexes } from '../../db/mongo.js';
import type { GrantAction, GrantDoc, HourCut } from './model.js';

export const GRANTS = 'grants';

export const grantIndexes: CollectionIndexes = {
  collection: GRANTS,
  // Every read is "the grants of these (account, feature) pairs"; _id is the idempotency
  // index; the announcer reads the few grants that still owe an announcement.
  indexes: [
    { key: { accountId: 1, feature: 1 }, name: 'by_account_feature' },
    { key: { announceSince: 1 }, name: 'by_announce_since', sparse: true },
  ],
};

/** Deterministic from (account, idempotency key): concurrent retries race for one document. */
export function grantId(accountId: string, idempotencyKey: string): string {
  return `grt_${createHash('sha256').update(`${accountId}\u0000${idempotencyKey}`).digest('hex').slice(0, 24)}`;
}

export interface PairKey {
  accountId: string;
  feature: string;
}

export const pairKey = ({ accountId, feature }: PairKey): string => `${accountId}\u0000${feature}`;

function splitPairKey(key: string): PairKey {
  const at = key.lastIndexOf('\u0000');
  return { accountId: key.slice(0, at), feature: key.slice(at + 1) };
}

/**
 * Grants are written once, and changed only by a void (compare-and-set on `voidedAt`,
 * then the void's cut on `voidCut`). Counters are read through the usage module's
 * CounterReader, never written here.
 */
export class GrantRepository {
  readonly collection: Collection<GrantDoc>;
  /**
   * Coalesces the lookups made in one turn of the event loop, by any request, into one
   * query, and caches nothing: the usage engine asks once per distinct event instant, so a
   * batch of events with their own timestamps costs one query, while a grant issued or
   * voided a moment ago is always seen.
   */
  private readonly byPair: DataLoader<string, GrantDoc[], string>;

  constructor(db: Db) {
    this.collection = db.collection<GrantDoc>(GRANTS);
    this.byPair = coalescedReader(async (keys) => this.queryPairs(keys.map(splitPairKey)));
  }

  /** False when the id exists already (an idempotent retry, or a concurrent one). */
  async insert(doc: GrantDoc): Promise<boolean> {
    return insertUnlessPresent(this.collection, doc);
  }

  findById(id: string): Promise<GrantDoc | null> {
    return this.collection.findOne({ _id: id });
  }

  /** Every grant of the given pairs (in one query with whatever else is asked in this turn). */
  async findForPairs(pairs: readonly PairKey[]): Promise<GrantDoc[]> {
    if (pairs.length === 0) return [];
    return (await loadAll(this.byPair, [...new Set(pairs.map(pairKey))])).flat();
  }

  private async queryPairs(pairs: readonly PairKey[]): Promise<GrantDoc[][]> {
    const accountIds = [...new Set(pairs.map((pair) => pair.accountId))];
    const features = [...new Set(pairs.map((pair) => pair.feature))];
    const byPair = new Map<string, GrantDoc[]>(pairs.map((pair) => [pairKey(pair), []]));
    for (const doc of await this.collection.find({ accountId: { $in: accountIds }, feature: { $in: features } }).toArray()) {
      byPair.get(pairKey(doc))?.push(doc);
    }
    return pairs.map((pair) => byPair.get(pairKey(pair))!);
  }

  /** Every grant of the given accounts, oldest first, in one query. */
  findByAccounts(accountIds: readonly string[]): Promise<GrantDoc[]> {
    const filter: Filter<GrantDoc> = { accountId: { $in: [...new Set(accountIds)] } };
    return this.collection.find(filter).sort({ issuedAt: 1, _id: 1 }).toArray();
  }

  /**
   * Marks a grant voided unless it already is, owing its `voided` announcement in the same
   * write; returns the grant as it was before, or null.
   */
  markVoided(id: string, fields: Pick<GrantDoc, 'voidedAt' | 'voidedBy' | 'voidReason' | 'voidRequestId'>): Promise<GrantDoc | null> {
    // returnDocument 'before' only (SPEC §5); the caller applies the change itself.
    return this.collection.findOneAndUpdate(
      { _id: id, voidedAt: null },
      { $set: { ...fields, announceSince: fields.voidedAt! }, $addToSet: { announce: 'voided' } },
      { returnDocument: 'before' },
    );
  }

  /**
   * `action` was announced: no longer owed. One write when it was the only one owed;
   * otherwise a pull, then the fields go once nothing is owed (conditional, so a void's
   * announcement recorded meanwhile stays).
   */
  async clearAnnouncement(id: string, action: GrantAction): Promise<void> {
    const only = await this.collection.updateOne({ _id: id, announce: [action] }, { $unset: { announce: '', announceSince: '' } });
    if (only.matchedCount > 0) return;
    const pulled = await this.collection.updateOne({ _id: id, announce: action }, { $pull: { announce: action } });
    if (pulled.matchedCount > 0) await this.dropEmptyAnnouncement(id);
  }

  async dropEmptyAnnouncement(id: string): Promise<void> {
    await this.collection.updateOne({ _id: id, announce: { $size: 0 } }, { $unset: { announce: '', announceSince: '' } });
  }

  /** Grants owing an announcement recorded before `before`, oldest first (tagged reads). */
  owedAnnouncements(before: Date, limit: number, comment: string): Promise<GrantDoc[]> {
    return this.collection
      .find({ announceSince: { $lt: before } }, { comment })
      .sort({ announceSince: 1 })
      .limit(limit)
      .toArray();
  }

  async setVoidCut(id: string, cut: HourCut): Promise<void> {
    await this.collection.updateOne({ _id: id, voidCut: null }, { $set: { voidCut: cut } });
  }
}
