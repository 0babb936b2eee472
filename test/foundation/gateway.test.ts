import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signToken, startTestInstance, type TestInstance } from '../support/harness.js';
import { startAccountsSubgraph, startGateway } from '../support/gateway.js';
import { insertContracts } from '../support/seed.js';

let allotment: TestInstance;
let accounts: Awaited<ReturnType<typeof startAccountsSubgraph>>;
let gateway: Awaited<ReturnType<typeof startGateway>>;

beforeAll(async () => {
  allotment = await startTestInstance();
  await insertContracts(allotment.database.db, [{ _id: 'ctr_4821', accountId: 'acct_4821', status: 'PAST_DUE' }]);
  accounts = await startAccountsSubgraph();
  gateway = await startGateway({ allotmentUrl: allotment.url, accountsUrl: accounts.url });
});
afterAll(async () => {
  await gateway?.stop();
  await accounts?.stop();
  await allotment?.stop();
});

describe('federation through a real gateway', () => {
  it('composes with the reference accounts subgraph into one supergraph', () => {
    expect(gateway.supergraph).toContain('join__graph(name: "allotment"');
    expect(gateway.supergraph).toContain('join__graph(name: "accounts"');
    expect(gateway.supergraph).toMatch(/type Account[\s\S]*@join__type\(graph: ALLOTMENT, key: "id"\)/);
  });

  it('joins an account from the accounts subgraph with its contracts from Allotment', async () => {
    const token = await signToken({ scope: 'entitlements:read' });
    const result = await gateway.query('{ account(id: "acct_4821") { id name contracts { id status externalRef } } }', {}, token);
    expect(result.errors).toBeUndefined();
    expect(result.data).toEqual({
      account: {
        id: 'acct_4821',
        name: 'Northwind Data',
        contracts: [{ id: 'ctr_4821', status: 'PAST_DUE', externalRef: 'SF-CTR-004821' }],
      },
    });
  });

  it('passes the caller identity through, so a customer token cannot read another account', async () => {
    const token = await signToken({ scope: 'entitlements:read', account_id: 'acct_1001' });
    const result = await gateway.query('{ account(id: "acct_4821") { id contracts { id } } }', {}, token);
    expect(result.errors?.length).toBeGreaterThan(0);
    expect(JSON.stringify(result.errors)).toContain('FORBIDDEN');
    expect(result.data?.account?.contracts ?? null).toBeNull();
  });
});
