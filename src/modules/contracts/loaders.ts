import DataLoader from 'dataloader';
import type { ContractDoc } from './model.js';
import type { ContractReads } from './service.js';

/** Per-request loaders: N entity representations become one query per collection. */
export function createContractLoaders(contracts: ContractReads) {
  return {
    contractById: new DataLoader<string, ContractDoc | null>(async (ids) => {
      const found = new Map((await contracts.findByIds(ids)).map((doc) => [doc._id, doc]));
      return ids.map((id) => found.get(id) ?? null);
    }),
    contractsByAccount: new DataLoader<string, ContractDoc[]>(async (accountIds) => {
      const byAccount = new Map<string, ContractDoc[]>(accountIds.map((id) => [id, []]));
      for (const doc of await contracts.findByAccountIds(accountIds)) byAccount.get(doc.accountId)?.push(doc);
      return accountIds.map((id) => byAccount.get(id) ?? []);
    }),
  };
}

export type ContractLoaders = ReturnType<typeof createContractLoaders>;
