import type DataLoader from 'dataloader';
import type { Collection, Db } from 'mongodb';
import { coalescedReader, loadAll } from '../../db/coalesce.js';
import type { CollectionIndexes } from '../../db/mongo.js';
import { compareOldestFirst, type ContractDoc } from './model.js';
import type { ContractTermsCache } from './terms-cache.js';

export const CONTRACTS = 'contracts';

export const contractIndexes: CollectionIndexes = {
  collection: CONTRACTS,
  indexes: [
    { key: { accountId: 1, startsAt: 1 }, name: 'by_account' },
    // The trial pass (R18, trials.ts): trials past their end, and trial ends still to announce.
    { key: { status: 1, trialEndsAt: 1 }, name: 'by_trial_end' },
    { key: { 'trialEnd.announced': 1 }, name: 'by_trial_announcement' },
    // The terms cache's feed (terms-cache.ts): contracts written in the last seconds.
    { key: { updatedAt: 1 }, name: 'by_updated_at' },
  ],
};

export class ContractRepository {
  readonly collection: Collection<ContractDoc>;
  /** Every entitlement decision starts here: concurrent requests share one query. */
  private readonly byAccount: DataLoader<string, ContractDoc[], string>;

  constructor(
    db: Db,
    /** The instance's terms cache, told of every write (see touched). */
    private readonly termsCache?: ContractTermsCache,
  ) {
    this.collection = db.collection<ContractDoc>(CONTRACTS);
    this.byAccount = coalescedReader(async (accountIds) => {
      const found = new Map<string, ContractDoc[]>(accountIds.map((id) => [id, []]));
      for (const doc of await this.collection.find({ accountId: { $in: [...new Set(accountIds)] } }).toArray())
        found.get(doc.accountId)?.push(doc);
      return accountIds.map((id) => found.get(id)!);
    });
  }

  /**
   * Every contract write calls this once it is acknowledged or has failed (it may have
   * landed), before the mutation answers: this instance's terms cache forgets the accounts.
   * A write must also stamp `updatedAt` (the feed other instances poll).
   */
  touched(accountIds: Iterable<string>): void {
    this.termsCache?.invalidate(accountIds);
  }

  /** The accounts' contracts through the terms cache (the hot path), oldest first. */
  async findTermsByAccountIds(accountIds: readonly string[]): Promise<ContractDoc[]> {
    if (!this.termsCache) return this.findByAccountIds(accountIds);
    return this.termsCache.read(accountIds, (missing) => this.findByAccountIds(missing));
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
