import type { Collection, Db } from 'mongodb';
import { insertUnlessPresent, isDuplicateKeyError, type CollectionIndexes } from '../../db/mongo.js';
import type { OverageTerms } from '../catalog/index.js';
import type { InvoiceDoc } from './model.js';
import type { UsageOwnership } from './ownership.js';

export const INVOICES = 'invoices';
export const USAGE_OWNERS = 'usage_owners';

/**
 * Finalised invoices, one per (contract, billing period): `_id` is invoiceId(contractId,
 * periodStart), so finalising twice, or on two instances at once, stores one snapshot.
 * Written once, never updated.
 */
export const invoiceIndexes: CollectionIndexes = {
  collection: INVOICES,
  indexes: [{ key: { contractId: 1, periodStart: 1 }, name: 'by_contract_period' }],
};

export class InvoiceRepository {
  readonly collection: Collection<InvoiceDoc>;

  constructor(db: Db) {
    this.collection = db.collection<InvoiceDoc>(INVOICES);
  }

  findById(id: string): Promise<InvoiceDoc | null> {
    return this.collection.findOne({ _id: id });
  }

  /** False when a snapshot of this (contract, period) exists already. */
  async insert(doc: InvoiceDoc): Promise<boolean> {
    return insertUnlessPresent(this.collection, doc);
  }
}

/**
 * Who rates a usage period and with which terms (ownership.ts), recorded by the first
 * finalisation of an invoice that covers it: `_id` is the counter id, written once, never
 * updated, so every later rating (any contract's, preview or final) follows it.
 */
export interface UsageOwnerDoc extends Omit<UsageOwnership, 'included' | 'overage'> {
  _id: string;
  accountId: string;
  included: bigint | null;
  overage: OverageTerms | null;
  recordedAt: Date;
  /** The invoice whose finalisation recorded it. */
  recordedBy: string;
}

export class UsageOwnerRepository {
  readonly collection: Collection<UsageOwnerDoc>;

  constructor(db: Db) {
    this.collection = db.collection<UsageOwnerDoc>(USAGE_OWNERS);
  }

  async findByCounterIds(ids: readonly string[]): Promise<Map<string, UsageOwnerDoc>> {
    if (ids.length === 0) return new Map();
    const docs = await this.collection.find({ _id: { $in: [...new Set(ids)] } }).toArray();
    return new Map(docs.map((doc) => [doc._id, doc]));
  }

  /** Inserts the record unless one exists; either way returns the one that stands. */
  async record(doc: UsageOwnerDoc): Promise<UsageOwnerDoc> {
    try {
      await this.collection.insertOne(doc);
      return doc;
    } catch (error) {
      if (!isDuplicateKeyError(error)) throw error;
      const winner = await this.collection.findOne({ _id: doc._id });
      if (!winner) throw new Error(`usage owner ${doc._id} collided on insert but cannot be read back`);
      return winner;
    }
  }
}
