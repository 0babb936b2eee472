import { createHash } from 'node:crypto';
import type DataLoader from 'dataloader';
import type { Collection, Db, Filter } from 'mongodb';
import { coalescedReader, loadAll } from '../../db/coalesce.js';
import { isDuplicateKeyError, type CollectionIndexes } from '../../db/mongo.js';
import { toMicros, type Micros } from '../../shared/quantity.js';
import { hourKey, type CounterDoc, type CounterReader } from '../usage/counters.js';
import type { GrantDoc, HourCut } from './model.js';

export const GRANTS = 'grants';

export const grantIndexes: CollectionIndexes = {
  collection: GRANTS,
  // Every read is "the grants of these (account, feature) pairs"; _id is the idempotency index.
  indexes: [{ key: { accountId: 1, feature: 1 }, name: 'by_account_feature' }],
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

/** The counter fields burn needs. */
export type CounterHours = Pick<CounterDoc, '_id' | 'accountId' | 'feature' | 'periodStart' | 'periodEnd' | 'used' | 'hours'>;

/** A span of usage periods to read for one pair: those overlapping [from, through]. */
export interface CounterSpan extends PairKey {
  from: Date;
  /** Periods starting after this are not needed. */
  through: Date;
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

  constructor(
    db: Db,
    private readonly counters: CounterReader,
  ) {
    this.collection = db.collection<GrantDoc>(GRANTS);
    this.byPair = coalescedReader(async (keys) => this.queryPairs(keys.map(splitPairKey)));
  }

  /** False when the id exists already (an idempotent retry, or a concurrent one). */
  async insert(doc: GrantDoc): Promise<boolean> {
    try {
      await this.collection.insertOne(doc);
      return true;
    } catch (error) {
      if (isDuplicateKeyError(error)) return false;
      throw error;
    }
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

  /** Marks a grant voided unless it already is; returns the grant as it was before, or null. */
  markVoided(id: string, fields: Pick<GrantDoc, 'voidedAt' | 'voidedBy' | 'voidReason' | 'voidRequestId'>): Promise<GrantDoc | null> {
    // returnDocument 'before' only (SPEC §5); the caller applies the change itself.
    return this.collection.findOneAndUpdate({ _id: id, voidedAt: null }, { $set: fields }, { returnDocument: 'before' });
  }

  async setVoidCut(id: string, cut: HourCut): Promise<void> {
    await this.collection.updateOne({ _id: id, voidCut: null }, { $set: { voidCut: cut } });
  }

  /**
   * How much of the hour containing `at` the counter of the period containing `at` has
   * counted: the `units` of an HourCut. Zero when no usage was counted there yet.
   */
  async hourUsedAt(pair: PairKey, at: Date): Promise<Micros> {
    const key = hourKey(at);
    const counter = await this.counters.collection.findOne(
      { accountId: pair.accountId, feature: pair.feature, periodStart: { $lte: at }, $or: [{ periodEnd: null }, { periodEnd: { $gt: at } }] },
      { projection: { [`hours.${key}`]: 1 } },
    );
    return toMicros(counter?.hours?.[key]);
  }

  /** The counters of several pairs' spans, in one query. */
  async countersFor(spans: readonly CounterSpan[]): Promise<CounterHours[]> {
    if (spans.length === 0) return [];
    const docs = await this.counters.collection
      .find(
        {
          $or: spans.map((span) => ({
            accountId: span.accountId,
            feature: span.feature,
            periodStart: { $lte: span.through },
            $or: [{ periodEnd: null }, { periodEnd: { $gt: span.from } }],
          })),
        },
        { projection: { accountId: 1, feature: 1, periodStart: 1, periodEnd: 1, used: 1, hours: 1 } },
      )
      .toArray();
    return docs.map((doc) => ({
      ...doc,
      used: toMicros(doc.used),
      hours: Object.fromEntries(Object.entries(doc.hours ?? {}).map(([key, value]) => [key, toMicros(value)])),
    }));
  }
}
