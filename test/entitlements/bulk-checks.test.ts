import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countCommands, requestCommands, startTestInstance, type TestInstance } from '../support/harness.js';
import { DECISION_FIELDS, errorCode, gql, upsertContract } from '../support/fixtures.js';
import { seedEntitlementAccounts } from './fixtures.js';

let allotment: TestInstance;

const CHECKS = `query ($checks: [EntitlementCheckInput!]!) { checkEntitlements(checks: $checks) { ${DECISION_FIELDS} } }`;

beforeAll(async () => {
  allotment = await startTestInstance();
  await seedEntitlementAccounts(allotment);
});
afterAll(() => allotment.stop());

describe('checkEntitlements', () => {
  it('answers 100 pairs in order with a bounded number of database commands', async () => {
    for (let i = 0; i < 50; i++) {
      await upsertContract(allotment, {
        id: `ctr_bulk_${i}`,
        accountId: `acct_bulk_${i}`,
        planKey: i % 2 ? 'growth' : 'enterprise',
        startsAt: '2026-01-01T00:00:00Z',
      });
    }
    const checks = Array.from({ length: 50 }, (_, i) => [
      { accountId: `acct_bulk_${i}`, feature: 'api_calls', requestedUnits: '5' },
      { accountId: `acct_bulk_${i}`, feature: 'premium_analytics' },
    ]).flat();
    const before = allotment.commands.length;
    const { checkEntitlements } = await gql(allotment, CHECKS, { checks });
    const commands = requestCommands(allotment, before).map((event) => event.commandName);

    expect(checkEntitlements).toHaveLength(100);
    expect(checkEntitlements[0]).toMatchObject({
      accountId: 'acct_bulk_0',
      feature: 'api_calls',
      allowed: true,
      capacity: '1000000',
      requested: '5',
    });
    expect(checkEntitlements[2]).toMatchObject({ accountId: 'acct_bulk_1', feature: 'api_calls', capacity: '10000000' });
    expect(checkEntitlements.filter((d: any) => d.feature === 'premium_analytics').map((d: any) => d.reason)).toEqual(
      Array.from({ length: 50 }, (_, i) => (i % 2 ? 'NOT_ENTITLED' : 'INCLUDED')),
    );
    // contracts, features, plan versions (cached after first use), counters
    expect(countCommands(allotment, ['find', 'aggregate', 'getMore'], before)).toBeLessThanOrEqual(4);
    expect(commands.length).toBeLessThanOrEqual(6);
  });

  it('refuses more than 1,000 checks with BAD_USER_INPUT', async () => {
    const checks = Array.from({ length: 1001 }, () => ({ accountId: 'acct_4821', feature: 'sso' }));
    const response = await allotment.graphql(CHECKS, { checks });
    expect(errorCode(response)).toBe('BAD_USER_INPUT');
    expect(response.errors?.[0]?.message).toMatch(/at most 1000 checks; got 1001/);
  });

  it('resolves 100 Account entitlements through _entities in a bounded number of commands', async () => {
    const reps = Array.from({ length: 50 }, (_, i) => ({ __typename: 'Account', id: `acct_bulk_${i}` }));
    const before = allotment.commands.length;
    const response = await allotment.graphql(
      `query ($reps: [_Any!]!) { _entities(representations: $reps) { ... on Account { id entitlements { feature { key } used capacity } } } }`,
      { reps },
    );
    expect(response.errors).toBeUndefined();
    expect(response.data?._entities[1].entitlements.map((e: any) => e.feature.key)).toEqual([
      'api_calls',
      'bulk_export',
      'premium_analytics',
      'sso',
    ]);
    expect(countCommands(allotment, ['find', 'aggregate', 'getMore'], before)).toBeLessThanOrEqual(4);
  });
});
