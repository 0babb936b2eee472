import type { Collection, Db } from 'mongodb';
import type { CollectionIndexes } from '../../db/mongo.js';
import type { ContractDoc } from './model.js';

export const CONTRACTS = 'contracts';

export const contractIndexes: CollectionIndexes = {
  collection: CONTRACTS,
  indexes: [{ key: { accountId: 1, startsAt: 1 }, name: 'by_account' }],
};

export class ContractRepository {
  readonly collection: Collection<ContractDoc>;

  constructor(db: Db) {
    this.collection = db.collection<ContractDoc>(CONTRACTS);
  }

  /** One `find` for any number of ids (DataLoader batches into this). */
  async findByIds(ids: readonly string[]): Promise<ContractDoc[]> {
    return this.collection.find({ _id: { $in: [...ids] } }).toArray();
  }

  /** One `find` for the contracts of any number of accounts, oldest first. */
  async findByAccountIds(accountIds: readonly string[]): Promise<ContractDoc[]> {
    return this.collection
      .find({ accountId: { $in: [...accountIds] } })
      .sort({ startsAt: 1, _id: 1 })
      .toArray();
  }
}
