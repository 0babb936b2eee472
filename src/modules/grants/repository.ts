import { createHash } from 'node:crypto';
import type DataLoader from 'dataloader';
import type { Collection, Db, Filter } from 'mongodb';
import { coalescedReader, loadAll } from '../../db/coalesce.js';
import { insertUnlessPresent, type CollectionIndexes } from '../../db/mongo.js';
import type { GrantCache } from './grant-cache.js';
import type { GrantAction, GrantDoc, HourCut } from './model.js';

export const GRANTS = 'grants';

export const grantIndexes: CollectionIndexes = {
  collection: GRANTS,
  // Every read is "the grants of these (account, feature) pairs"; _id is the idempotency
  // index; the announcer reads the few grants that still owe an announcement.
  indexes: [
    { key: { accountId: 1, feature: 1 }, name: 'by_account_feature' },
    { key: { announceSince: 1 }, name: 'by_announce_since', sparse: true },
    // The grants cache's feed (grant-cache.ts): grants written in the last seconds.
    { key: { updatedAt: 1 }, name: 'by_updated_at', sparse: true },
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

/** A grant as its writes name it: the id, and the account whose cached grants it invalidates. */
export type GrantRef = Pick<GrantDoc, '_id' | 'accountId'>;

/** Every update stamps the feed (grant-cache.ts), keeping the document's other fields. */
const stamp = () => ({ $set: { updatedAt: new Date() }, $inc: { revision: 1 } });

function splitPairKey(key: string): PairKey {
  const at = key.lastIndexOf('\u0000');
  return { accountId: key.slice(0, at), feature: key.slice(at + 1) };
}

/**
 * Grants are written once, and changed only by a void (compare-and-set on `voidedAt`,
 * then the void's cut on `voidCut`) and the announcement bookkeeping. Every write stamps
 * `updatedAt` and invalidates its account in the instance's grants cache once it answered
 * or failed (see touched). Counters are read through the usage module's CounterReader,
 * never written here.
 */
export class GrantRepository {
  readonly collection: Collection<GrantDoc>;
  /**
   * Coalesce the lookups made in one turn of the event loop, by any request, into one
   * read. `byPair` caches nothing: a grant issued or voided anywhere a moment ago is seen.
   * `byPairCached` (the hot path: checks and recordUsage) answers the accounts held by the
   * grants cache from it and the others in one query (every feature of those accounts,
   * which the cache then holds); a grant issued or voided on this instance is seen at once
   * (its write invalidated the account before it answered), one written elsewhere within
   * the cache's bound. The usage engine asks once per distinct event instant, so a batch
   * of events with their own timestamps costs at most one query.
   */
  private readonly byPair: DataLoader<string, GrantDoc[], string>;
  private readonly byPairCached: DataLoader<string, GrantDoc[], string>;

  constructor(
    db: Db,
    /** The instance's grants cache, told of every write (see touched); without one every read goes to the database. */
    private readonly cache?: GrantCache,
  ) {
    this.collection = db.collection<GrantDoc>(GRANTS);
    this.byPair = coalescedReader(async (keys) => this.readPairs(keys.map(splitPairKey), false));
    this.byPairCached = coalescedReader(async (keys) => this.readPairs(keys.map(splitPairKey), true));
  }

  /** After every write to these accounts' grants, acknowledged or failed, before the caller answers. */
  touched(accountIds: Iterable<string>): void {
    this.cache?.invalidate(accountIds);
  }

  /** Runs a write, then invalidates its account whatever the outcome. */
  private async writing<T>(accountId: string, write: () => Promise<T>): Promise<T> {
    try {
      return await write();
    } finally {
      this.touched([accountId]);
    }
  }

  /** False when the id exists already (an idempotent retry, or a concurrent one). */
  async insert(doc: GrantDoc): Promise<boolean> {
    return this.writing(doc.accountId, () => insertUnlessPresent(this.collection, { ...doc, updatedAt: new Date(), revision: 0 }));
  }

  findById(id: string): Promise<GrantDoc | null> {
    return this.collection.findOne({ _id: id });
  }

  /**
   * Every grant of the given pairs (in one read with whatever else is asked in this turn);
   * `cached` for the hot path only (see byPairCached).
   */
  async findForPairs(pairs: readonly PairKey[], options: { cached?: boolean } = {}): Promise<GrantDoc[]> {
    if (pairs.length === 0) return [];
    return (await loadAll(options.cached ? this.byPairCached : this.byPair, [...new Set(pairs.map(pairKey))])).flat();
  }

  private async readPairs(pairs: readonly PairKey[], cached: boolean): Promise<GrantDoc[][]> {
    const byPair = new Map<string, GrantDoc[]>(pairs.map((pair) => [pairKey(pair), []]));
    const accountIds = [...new Set(pairs.map((pair) => pair.accountId))];
    const docs =
      cached && this.cache
        ? await this.cache.read(accountIds, (missing) => this.collection.find({ accountId: { $in: [...missing] } }).toArray())
        : await this.collection
            .find({ accountId: { $in: accountIds }, feature: { $in: [...new Set(pairs.map((pair) => pair.feature))] } })
            .toArray();
    for (const doc of docs) byPair.get(pairKey(doc))?.push(doc);
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
  markVoided(grant: GrantRef, fields: Pick<GrantDoc, 'voidedAt' | 'voidedBy' | 'voidReason' | 'voidRequestId'>): Promise<GrantDoc | null> {
    const { $set, $inc } = stamp();
    // returnDocument 'before' only (SPEC §5); the caller applies the change itself.
    return this.writing(grant.accountId, () =>
      this.collection.findOneAndUpdate(
        { _id: grant._id, voidedAt: null },
        { $set: { ...fields, announceSince: fields.voidedAt!, ...$set }, $inc, $addToSet: { announce: 'voided' } },
        { returnDocument: 'before' },
      ),
    );
  }

  /**
   * `action` was announced: no longer owed. One write when it was the only one owed;
   * otherwise a pull, then the fields go once nothing is owed (conditional, so a void's
   * announcement recorded meanwhile stays).
   */
  async clearAnnouncement(grant: GrantRef, action: GrantAction): Promise<void> {
    await this.writing(grant.accountId, async () => {
      const id = grant._id;
      const only = await this.collection.updateOne(
        { _id: id, announce: [action] },
        { ...stamp(), $unset: { announce: '', announceSince: '' } },
      );
      if (only.matchedCount > 0) return;
      const pulled = await this.collection.updateOne({ _id: id, announce: action }, { ...stamp(), $pull: { announce: action } });
      if (pulled.matchedCount > 0) await this.dropEmptyAnnouncement(grant);
    });
  }

  async dropEmptyAnnouncement(grant: GrantRef): Promise<void> {
    await this.writing(grant.accountId, () =>
      this.collection.updateOne({ _id: grant._id, announce: { $size: 0 } }, { ...stamp(), $unset: { announce: '', announceSince: '' } }),
    );
  }

  /** Grants owing an announcement recorded before `before`, oldest first (tagged reads). */
  owedAnnouncements(before: Date, limit: number, comment: string): Promise<GrantDoc[]> {
    return this.collection
      .find({ announceSince: { $lt: before } }, { comment })
      .sort({ announceSince: 1 })
      .limit(limit)
      .toArray();
  }

  async setVoidCut(grant: GrantRef, cut: HourCut): Promise<void> {
    const { $set, $inc } = stamp();
    await this.writing(grant.accountId, () =>
      this.collection.updateOne({ _id: grant._id, voidCut: null }, { $set: { voidCut: cut, ...$set }, $inc }),
    );
  }
}
