import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countCommands, startTestInstance, type TestInstance } from '../support/harness.js';
import { insertContracts } from '../support/seed.js';

let allotment: TestInstance;

beforeAll(async () => {
  allotment = await startTestInstance();
  await insertContracts(allotment.database.db, [
    { _id: 'ctr_4821', accountId: 'acct_4821' },
    { _id: 'ctr_4821_addon', accountId: 'acct_4821', startsAt: new Date('2026-03-01T00:00:00Z') },
    { _id: 'ctr_0007', accountId: 'acct_0007', status: 'PAST_DUE' },
  ]);
});
afterAll(() => allotment.stop());

describe('federation entity resolution', () => {
  it('publishes its SDL through _service with the federated entity keys', async () => {
    const response = await allotment.graphql('{ _service { sdl } }');
    const sdl: string = response.data?._service.sdl;
    expect(sdl).toMatch(/type Account[^{]*@key\(fields: "id"\)/);
    expect(sdl).toMatch(/type Contract[^{]*@key\(fields: "id"\)/);
    expect(sdl).toContain('@link(url: "https://specs.apollo.dev/federation/v2.7"');
  });

  it('resolves Account and Contract representations through _entities', async () => {
    const response = await allotment.graphql(
      `query ($reps: [_Any!]!) { _entities(representations: $reps) {
          ... on Account { id contracts { id status } }
          ... on Contract { id status account { id } }
        } }`,
      {
        reps: [
          { __typename: 'Account', id: 'acct_4821' },
          { __typename: 'Contract', id: 'ctr_0007' },
          { __typename: 'Account', id: 'acct_without_contracts' },
          { __typename: 'Contract', id: 'ctr_unknown' },
        ],
      },
    );
    expect(response.errors).toBeUndefined();
    expect(response.data?._entities).toEqual([
      {
        id: 'acct_4821',
        contracts: [
          { id: 'ctr_4821', status: 'ACTIVE' },
          { id: 'ctr_4821_addon', status: 'ACTIVE' },
        ],
      },
      { id: 'ctr_0007', status: 'PAST_DUE', account: { id: 'acct_0007' } },
      { id: 'acct_without_contracts', contracts: [] },
      null,
    ]);
  });

  it('resolves 100 Account representations in one database round trip', async () => {
    const reps = Array.from({ length: 100 }, (_, i) => ({ __typename: 'Account', id: i === 0 ? 'acct_4821' : `acct_${i}` }));
    const before = allotment.commands.length;
    const response = await allotment.graphql(
      'query ($reps: [_Any!]!) { _entities(representations: $reps) { ... on Account { id contracts { id } } } }',
      { reps },
    );
    expect(response.errors).toBeUndefined();
    expect(response.data?._entities).toHaveLength(100);
    expect(response.data?._entities[0].contracts).toHaveLength(2);
    const roundTrips = countCommands(allotment, ['find', 'aggregate', 'getMore'], before);
    expect(roundTrips).toBeGreaterThanOrEqual(1);
    expect(roundTrips).toBeLessThanOrEqual(2);
  });
});
