import type DataLoader from 'dataloader';
import type { Collection, Db } from 'mongodb';
import { coalescedReader, loadAll } from '../../db/coalesce.js';
import type { CollectionIndexes } from '../../db/mongo.js';
import { compareOldestFirst, type ContractDoc } from './model.js';

export const CONTRACTS = 'contracts';

export const contractIndexes: CollectionIndexes = {
  collection: CONTRACTS,
  indexes: [
    { key: { accountId: 1, startsAt: 1 }, name: 'by_account' },
    // The trial pass (R18, trials.ts): trials past their end, and trial ends still to announce.
    { key: { status: 1, trialEndsAt: 1 }, name: 'by_trial_end' },
    { key: { 'trialEnd.announced': 1 }, name: 'by_trial_announcement' },
  ],
};

export class ContractRepository {
  readonly collection: Collection<ContractDoc>;
  /** Every entitlement decision starts here: concurrent requests share one query. */
  private readonly byAccount: DataLoader<string, ContractDoc[], string>;

  constructor(db: Db) {
    this.collection = db.collection<ContractDoc>(CONTRACTS);
    this.byAccount = coalescedReader(async (accountIds) => {
      const found = new Map<string, ContractDoc[]>(accountIds.map((id) => [id, []]));
      for (const doc of await this.collection.find({ accountId: { $in: [...new Set(accountIds)] } }).toArray())
        found.get(doc.accountId)?.push(doc);
      return accountIds.map((id) => found.get(id)!);
    });
  }

  /** One `find` for any number of ids (DataLoader batches into this). */
  async findByIds(ids: readonly string[]): Promise<ContractDoc[]> {
    return this.collection.find({ _id: { $in: [...ids] } }).toArray();
  }

  /** One `find` for the contracts of any number of accounts, oldest first. */
  async findByAccountIds(accountIds: readonly string[]): Promise<ContractDoc[]> {
    return (await loadAll(this.byAccount, [...new Set(accountIds)])).flat().sort(compareOldestFirst);
  }
}
