import DataLoader from 'dataloader';
import type { ContractDoc } from './model.js';
import type { ContractReads } from './service.js';

/** Per-request loaders: N entity representations become one query per collection. */
export function createContractLoaders(contracts: ContractReads) {
  return {
    contractById: new DataLoader<string, ContractDoc | null>(async (ids) => {
      // Only strings reach a filter: an object key ({"$ne": null}) would be an operator.
      const found = new Map((await contracts.findByIds(ids.filter(isString))).map((doc) => [doc._id, doc]));
      return ids.map((id) => found.get(id) ?? null);
    }),
    contractsByAccount: new DataLoader<string, ContractDoc[]>(async (accountIds) => {
      const byAccount = new Map<string, ContractDoc[]>(accountIds.map((id) => [id, []]));
      for (const doc of await contracts.findByAccountIds(accountIds.filter(isString))) byAccount.get(doc.accountId)?.push(doc);
      return accountIds.map((id) => byAccount.get(id) ?? []);
    }),
  };
}

const isString = (value: unknown): value is string => typeof value === 'string';

export type ContractLoaders = ReturnType<typeof createContractLoaders>;
