// Resolvers and seed data of the reference accounts subgraph.
// Dependency-free on purpose: an in-process test can import this file and build the same
// subgraph with its own copy of @apollo/subgraph (buildSubgraphSchema) and schema.graphql.

/** @typedef {{ id: string, name: string, email: string | null }} Account */
/** @typedef {{ id: string, accountId: string, externalRef: string | null }} Contract */

/** @type {readonly Account[]} */
export const accounts = Object.freeze([
  Object.freeze({ id: 'acct_4821', name: 'Northwind Data', email: 'billing@northwind.example' }),
  Object.freeze({ id: 'acct_1001', name: 'Acme API Co', email: 'finance@acme.example' }),
]);

/** @type {readonly Contract[]} */
export const contracts = Object.freeze([
  Object.freeze({ id: 'ctr_4821', accountId: 'acct_4821', externalRef: 'SF-CTR-004821' }),
  Object.freeze({ id: 'ctr_1001', accountId: 'acct_1001', externalRef: 'SF-CTR-001001' }),
]);

const accountsById = new Map(accounts.map((account) => [account.id, account]));
const contractsById = new Map(contracts.map((contract) => [contract.id, contract]));

// The seed records are frozen so tests can share them safely; resolvers hand out copies
// because @apollo/subgraph tags entity results with __typename in place.
const copyOrNull = (record) => (record ? { ...record } : null);

// Unknown ids resolve to null: the gateway then nulls the entity instead of inventing one.
export const resolvers = {
  Query: {
    account: (_parent, { id }) => copyOrNull(accountsById.get(id)),
    accounts: () => accounts.map((account) => ({ ...account })),
  },
  Account: {
    __resolveReference: ({ id }) => copyOrNull(accountsById.get(id)),
  },
  Contract: {
    __resolveReference: ({ id }) => copyOrNull(contractsById.get(id)),
  },
};
