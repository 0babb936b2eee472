import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gql, publishPlan, upsertContract } from '../support/fixtures.js';
import { requestCommands, startTestInstance, type TestInstance } from '../support/harness.js';
import { defineUsageFeatures, key, recordBatch } from '../support/usage-fixtures.js';
import { DAY, floorHour, iso, issueGrantOk, monthly } from './fixtures.js';
import { coldTerms } from '../support/terms-cache.js';

let allotment: TestInstance;
beforeAll(async () => {
  allotment = await startTestInstance();
  await defineUsageFeatures(allotment);
});
afterAll(() => allotment.stop());

/** The request's find commands sent since `from`, by collection. */
function findsByCollection(from: number): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const event of requestCommands(allotment, from)) {
    if (event.commandName !== 'find' && event.commandName !== 'aggregate') continue;
    const collection = String(event.command[event.commandName]);
    counts[collection] = (counts[collection] ?? 0) + 1;
  }
  return counts;
}

describe('granted capacity for a batch', () => {
  it('answers 30 accounts whose grants carry balances across periods with one grants query and one extra counters query', async () => {
    const suffix = randomUUID().slice(0, 8);
    const anchor = floorHour(Date.now()) - 70 * DAY;
    const planKey = `carry_${suffix}`;
    await publishPlan(allotment, {
      key: planKey,
      name: 'Carry',
      currency: 'USD',
      entitlements: [{ feature: 'api_calls', included: '10', enforcement: 'SOFT' }],
    });
    const accounts = Array.from({ length: 30 }, (_, i) => `acct_carry_${suffix}_${i}`);
    const earlier = monthly(anchor).period(0).start.getTime() + 2 * DAY;
    for (const accountId of accounts) {
      await upsertContract(allotment, { id: `ctr_${accountId}`, accountId, planKey, startsAt: iso(anchor) });
      await issueGrantOk(allotment, { accountId, amount: '100', effectiveAt: iso(anchor) });
    }
    // 25 used in the first period: 10 included, 15 from the grant, which carries 85 on.
    const batch = await recordBatch(
      allotment,
      accounts.map((accountId) => ({ accountId, feature: 'api_calls', quantity: '25', idempotencyKey: key(), timestamp: iso(earlier) })),
    );
    expect(batch.data?.recordUsageBatch.accepted).toBe(30);

    // The cold path (the batch above filled the grants cache; a warm check reads no grants:
    // test/entitlements/grants-cache.test.ts).
    coldTerms(allotment);
    const before = allotment.commands.length;
    const { checkEntitlements } = await gql(
      allotment,
      `query ($checks: [EntitlementCheckInput!]!) { checkEntitlements(checks: $checks) { accountId capacity } }`,
      {
        checks: accounts.map((accountId) => ({ accountId, feature: 'api_calls' })),
      },
    );
    expect(new Set(checkEntitlements.map((decision: any) => decision.capacity))).toEqual(new Set(['95']));
    const finds = findsByCollection(before);
    expect(finds.grants).toBe(1);
    // One for `used` (entitlements), one for the hour buckets the burn needs (grants).
    expect(finds.usage_counters).toBe(2);
    // The earlier period's included amount: its terms, from contracts read once for all 30 accounts.
    expect(finds.contracts).toBeLessThanOrEqual(2);
  });
});

describe('Account.grants for many accounts', () => {
  it('lists the grants of 20 accounts, each its own and of the feature asked, with one grants query', async () => {
    const suffix = randomUUID().slice(0, 8);
    const anchor = floorHour(Date.now()) - DAY;
    const planKey = `list_${suffix}`;
    await publishPlan(allotment, {
      key: planKey,
      name: 'Listing',
      currency: 'USD',
      entitlements: [
        { feature: 'api_calls', included: '10', enforcement: 'SOFT' },
        { feature: 'tokens', included: '10', enforcement: 'SOFT' },
      ],
    });
    const accounts = Array.from({ length: 20 }, (_, i) => `acct_list_${suffix}_${i}`);
    const issued = new Map<string, string[]>();
    for (const [i, accountId] of accounts.entries()) {
      await upsertContract(allotment, { id: `ctr_${accountId}`, accountId, planKey, startsAt: iso(anchor) });
      const apiGrant = await issueGrantOk(allotment, {
        accountId,
        feature: 'api_calls',
        amount: String(100 + i),
        effectiveAt: iso(anchor),
      });
      const tokensGrant = await issueGrantOk(allotment, { accountId, feature: 'tokens', amount: '5', effectiveAt: iso(anchor) });
      issued.set(accountId, [apiGrant.id, tokensGrant.id]);
    }
    // 25 api_calls each: 10 included, 15 from the grant.
    await recordBatch(
      allotment,
      accounts.map((accountId) => ({ accountId, feature: 'api_calls', quantity: '25', idempotencyKey: key() })),
    );

    const before = allotment.commands.length;
    const { _entities } = await gql(
      allotment,
      `query ($reps: [_Any!]!) { _entities(representations: $reps) { ... on Account { id
        all: grants(activeOnly: false) { id feature }
        api: grants(feature: "api_calls") { id amount burned remaining } } } }`,
      { reps: accounts.map((id) => ({ __typename: 'Account', id })) },
    );
    expect(findsByCollection(before).grants).toBe(1);
    for (const [i, account] of _entities.entries()) {
      const [apiGrant, tokensGrant] = issued.get(accounts[i]!)!;
      expect(account.all.map((grant: any) => [grant.id, grant.feature])).toEqual([
        [apiGrant, 'api_calls'],
        [tokensGrant, 'tokens'],
      ]);
      expect(account.api).toEqual([{ id: apiGrant, amount: String(100 + i), burned: '15', remaining: String(85 + i) }]);
    }
  });
});
