import type { Collection, Db } from 'mongodb';
import { isDuplicateKeyError, type CollectionIndexes } from '../../db/mongo.js';
import type { InvoiceDoc } from './model.js';

export const INVOICES = 'invoices';

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
    try {
      await this.collection.insertOne(doc);
      return true;
    } catch (error) {
      if (isDuplicateKeyError(error)) return false;
      throw error;
    }
  }
}
