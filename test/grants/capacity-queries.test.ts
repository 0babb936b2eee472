import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gql, publishPlan, upsertContract } from '../support/fixtures.js';
import { requestCommands, startTestInstance, type TestInstance } from '../support/harness.js';
import { defineUsageFeatures, key, recordBatch } from '../support/usage-fixtures.js';
import { DAY, floorHour, iso, issueGrantOk, monthly } from './fixtures.js';

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
    await publishPlan(allotment, { key: planKey, name: 'Carry', currency: 'USD', entitlements: [{ feature: 'api_calls', included: '10', enforcement: 'SOFT' }] });
    const accounts = Array.from({ length: 30 }, (_, i) => `acct_carry_${suffix}_${i}`);
    const earlier = monthly(anchor).period(0).start.getTime() + 2 * DAY;
    for (const accountId of accounts) {
      await upsertContract(allotment, { id: `ctr_${accountId}`, accountId, planKey, startsAt: iso(anchor) });
      await issueGrantOk(allotment, { accountId, amount: '100', effectiveAt: iso(anchor) });
    }
    // 25 used in the first period: 10 included, 15 from the grant, which carries 85 on.
    const batch = await recordBatch(allotment, accounts.map((accountId) => ({ accountId, feature: 'api_calls', quantity: '25', idempotencyKey: key(), timestamp: iso(earlier) })));
    expect(batch.data?.recordUsageBatch.accepted).toBe(30);

    const before = allotment.commands.length;
    const { checkEntitlements } = await gql(allotment, `query ($checks: [EntitlementCheckInput!]!) { checkEntitlements(checks: $checks) { accountId capacity } }`, {
      checks: accounts.map((accountId) => ({ accountId, feature: 'api_calls' })),
    });
    expect(new Set(checkEntitlements.map((decision: any) => decision.capacity))).toEqual(new Set(['95']));
    const finds = findsByCollection(before);
    expect(finds.grants).toBe(1);
    // One for `used` (entitlements), one for the hour buckets the burn needs (grants).
    expect(finds.usage_counters).toBe(2);
    // The earlier period's included amount: its terms, from contracts read once for all 30 accounts.
    expect(finds.contracts).toBeLessThanOrEqual(2);
  });
});
