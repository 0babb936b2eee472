/** Stored shape of a contract. Dates are BSON dates; ids are the billing system's ids. */
export interface ContractDoc {
  _id: string;
  accountId: string;
  planKey: string;
  planVersion: number;
  status: ContractStatus;
  startsAt: Date;
  endsAt: Date | null;
  billingAnchor: Date;
  createdAt: Date;
  updatedAt: Date;
}

export type ContractStatus = 'TRIALING' | 'ACTIVE' | 'PAST_DUE' | 'SUSPENDED' | 'CANCELED';

/**
 * What an `Account` representation resolves to. Accounts are owned by another subgraph,
 * so any id resolves; `contracts` is preloaded in one batched query for the whole request.
 */
export interface AccountRef {
  id: string;
  contracts: ContractDoc[];
}
