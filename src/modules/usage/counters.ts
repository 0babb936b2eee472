import type DataLoader from 'dataloader';
import type { Collection, Db } from 'mongodb';
import { coalescedReader, loadAll } from '../../db/coalesce.js';
import type { CollectionIndexes } from '../../db/mongo.js';
import { toMicros, type Micros } from '../../shared/quantity.js';
import { hourKey, memberKey, memberOfKey } from '../../shared/counter-key.js';
import type { PendingEntry } from './model.js';

// Engine, sweeper and ledger name counters with the kernel's keys.
export { counterId, hourKey, hourStart } from '../../shared/counter-key.js';

export const COUNTERS = 'usage_counters';

/**
 * One document per (account, feature, period): the running total in micro-units plus
 * hour buckets (for grant windows at one-hour resolution, and usage series). Every change
 * is a single-document atomic update; `pending` lists the events or batches applied here
 * whose bookkeeping has not finished, which makes re-applying them a no-op (SPEC §6).
 */
export interface CounterDoc {
  /** counterId(accountId, feature, periodStart) */
  _id: string;
  accountId: string;
  feature: string;
  periodStart: Date;
  /** Null for NEVER-resetting entitlements. */
  periodEnd: Date | null;
  used: Micros;
  /** Micro-units per UTC hour, keyed by hourKey(). */
  hours: Record<string, Micros>;
  /**
   * A pool counter (R13): each member's share of `used`, keyed by memberKey(account);
   * the owner's own usage is `used` minus the shares. Absent on unpooled counters.
   */
  members?: Record<string, Micros>;
  /**
   * A credit counter (R14): each burning feature's own units (`used`) and hour buckets,
   * beside the credits they burned in `used`. Absent when nothing burned credits here.
   */
  burns?: Record<string, { used: Micros; hours: Record<string, Micros> }>;
  /** Applied posting attempts whose bookkeeping has not finished (see PendingEntry). */
  pending: PendingEntry[];
  /**
   * Set when the period's invoice is final (rating, issue 8): events that still land here
   * are counted but flagged `late` and listed for re-rating (R8). See isPeriodFinal().
   */
  finalizedAt?: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

export const counterIndexes: CollectionIndexes = {
  collection: COUNTERS,
  indexes: [
    { key: { accountId: 1, feature: 1, periodStart: 1 }, name: 'by_account_feature_period' },
    // The sweeper looks for entries left behind by a crash or a stalled worker.
    { key: { 'pending.at': 1 }, name: 'by_pending_age' },
  ],
};

/** The one predicate for R8's `late`: has rating finalised this counter's period? */
export function isPeriodFinal(counter: Pick<CounterDoc, 'finalizedAt'> | null | undefined): boolean {
  return counter?.finalizedAt instanceof Date;
}

/** The counter fields burn needs (grants, R5). */
export type CounterHours = Pick<CounterDoc, '_id' | 'accountId' | 'feature' | 'periodStart' | 'periodEnd' | 'used' | 'hours'>;

/** The usage periods of one (account, feature) overlapping [from, through]. */
export interface CounterSpan {
  accountId: string;
  feature: string;
  from: Date;
  /** Periods starting after this are not needed. */
  through: Date;
}

/**
 * The read side of `usage_counters`, the one way other modules see counted usage: the
 * entitlements module for balances, grants for burn, alerts for thresholds, rating for
 * invoices. Writes stay in the usage ledger.
 */
export class CounterReader {
  private readonly collection: Collection<CounterDoc>;
  /** Balances are read by every check: concurrent requests share one query. */
  private readonly usedById: DataLoader<string, Micros, string>;

  constructor(db: Db) {
    this.collection = db.collection<CounterDoc>(COUNTERS);
    // One reader for both: a check's `used` and a pool member's share (R13) of the same
    // counter come back from one query. Keys are `counterId`, or `counterId\0memberKey`.
    this.usedById = coalescedReader(async (keys) => {
      const split = keys.map((key) => key.split('\u0000') as [string, string | undefined]);
      const projection: Record<string, 1> = { used: 1 };
      // A burning feature's own units (R14) are keyed `b:<feature>` (no member key has ":").
      const path = (member: string) => (member.startsWith('b:') ? `burns.${member.slice(2)}.used` : `members.${member}`);
      for (const [, member] of split) if (member !== undefined) projection[path(member)] = 1;
      const docs = await this.collection.find({ _id: { $in: [...new Set(split.map(([id]) => id))] } }, { projection }).toArray();
      const byId = new Map(docs.map((doc) => [doc._id, doc]));
      return split.map(([id, member]) => {
        const doc = byId.get(id);
        if (member?.startsWith('b:')) return toMicros(doc?.burns?.[member.slice(2)]?.used);
        return toMicros(member === undefined ? doc?.used : doc?.members?.[member]);
      });
    });
  }

  /** Used amounts for many counters in one query; counters never written read as 0. */
  async usedByIds(ids: readonly string[]): Promise<Map<string, Micros>> {
    const unique = [...new Set(ids)];
    const used = await loadAll(this.usedById, unique);
    return new Map(unique.map((id, i) => [id, used[i]!]));
  }

  /** Members' shares of pool counters (R13), in request order; 0 when nothing was drawn. */
  async memberShares(pairs: ReadonlyArray<{ counterId: string; memberId: string }>): Promise<Micros[]> {
    return loadAll(
      this.usedById,
      pairs.map(({ counterId, memberId }) => `${counterId}\u0000${memberKey(memberId)}`),
    );
  }

  /** Burning features' own units on their credit counters (R14), in request order; 0 when none. */
  async burnUsed(pairs: ReadonlyArray<{ counterId: string; feature: string }>): Promise<Micros[]> {
    return loadAll(
      this.usedById,
      pairs.map(({ counterId, feature }) => `${counterId}\u0000b:${feature}`),
    );
  }

  /** Every member's share of a pool counter (R13), by member account id; none for unpooled counters. */
  async sharesOf(counterIds: readonly string[]): Promise<Map<string, Map<string, Micros>>> {
    const found = new Map<string, Map<string, Micros>>();
    if (counterIds.length === 0) return found;
    const docs = await this.collection.find({ _id: { $in: [...counterIds] } }, { projection: { members: 1 } }).toArray();
    for (const doc of docs) {
      if (!doc.members) continue;
      found.set(doc._id, new Map(Object.entries(doc.members).map(([key, value]) => [memberOfKey(key), toMicros(value)])));
    }
    return found;
  }

  /** Used amounts and how many postings are still settling (rating waits for those). */
  async usedAndPending(ids: readonly string[]): Promise<Map<string, { used: Micros; pending: number }>> {
    const found = new Map<string, { used: Micros; pending: number }>();
    if (ids.length === 0) return found;
    const docs = await this.collection.find({ _id: { $in: [...ids] } }, { projection: { used: 1, pending: 1 } }).toArray();
    for (const doc of docs) found.set(doc._id, { used: toMicros(doc.used), pending: doc.pending?.length ?? 0 });
    return found;
  }

  /** One counter's total and period, or null when nothing was counted there yet. */
  async periodTotal(counterId: string): Promise<{ used: Micros; periodStart: Date; periodEnd: Date | null } | null> {
    const counter = await this.collection.findOne({ _id: counterId }, { projection: { used: 1, periodStart: 1, periodEnd: 1 } });
    return counter ? { used: toMicros(counter.used), periodStart: counter.periodStart, periodEnd: counter.periodEnd ?? null } : null;
  }

  /**
   * How much of the hour containing `at` the counter of the period containing `at` has
   * counted (a void's HourCut, R5). Zero when no usage was counted there yet.
   */
  async hourUsedAt(accountId: string, feature: string, at: Date): Promise<Micros> {
    const key = hourKey(at);
    const counter = await this.collection.findOne(
      { accountId, feature, periodStart: { $lte: at }, $or: [{ periodEnd: null }, { periodEnd: { $gt: at } }] },
      { projection: { [`hours.${key}`]: 1 } },
    );
    return toMicros(counter?.hours?.[key]);
  }

  /** The counters of several pairs' spans, in one query. */
  async countersFor(spans: readonly CounterSpan[]): Promise<CounterHours[]> {
    if (spans.length === 0) return [];
    const docs = await this.collection
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
