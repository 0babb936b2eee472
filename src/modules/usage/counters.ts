import type DataLoader from 'dataloader';
import type { Collection, Db } from 'mongodb';
import { coalescedReader, loadAll } from '../../db/coalesce.js';
import type { CollectionIndexes } from '../../db/mongo.js';
import { toMicros, type Micros } from '../../shared/quantity.js';
import type { PendingEntry } from './model.js';

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

export function counterId(accountId: string, feature: string, periodStart: Date): string {
  return `${accountId}|${feature}|${periodStart.toISOString()}`;
}

/** "2026013113" for 2026-01-31T13:xx UTC: sortable, and free of "." and "$". */
export function hourKey(at: Date): string {
  return at.toISOString().slice(0, 13).replace(/[-T]/g, '');
}

/** The one predicate for R8's `late`: has rating finalised this counter's period? */
export function isPeriodFinal(counter: Pick<CounterDoc, 'finalizedAt'> | null | undefined): boolean {
  return counter?.finalizedAt instanceof Date;
}

export function hourStart(key: string): Date {
  return new Date(`${key.slice(0, 4)}-${key.slice(4, 6)}-${key.slice(6, 8)}T${key.slice(8, 10)}:00:00.000Z`);
}

export class CounterReader {
  readonly collection: Collection<CounterDoc>;
  /** Balances are read by every check: concurrent requests share one query. */
  private readonly usedById: DataLoader<string, Micros, string>;

  constructor(db: Db) {
    this.collection = db.collection<CounterDoc>(COUNTERS);
    this.usedById = coalescedReader(async (ids) => {
      const used = new Map<string, Micros>();
      for (const doc of await this.collection.find({ _id: { $in: [...new Set(ids)] } }, { projection: { used: 1 } }).toArray()) used.set(doc._id, toMicros(doc.used));
      return ids.map((id) => used.get(id) ?? 0n);
    });
  }

  /** Used amounts for many counters in one query; counters never written read as 0. */
  async usedByIds(ids: readonly string[]): Promise<Map<string, Micros>> {
    const unique = [...new Set(ids)];
    const used = await loadAll(this.usedById, unique);
    return new Map(unique.map((id, i) => [id, used[i]!]));
  }
}
