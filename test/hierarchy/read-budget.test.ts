/**
 * The check path's read budget with pools (R13): an unpooled check makes no hierarchy
 * read at all, and a pooled member's check adds a bounded, measured number of reads,
 * whatever the number of checks in the request.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gql } from '../support/fixtures.js';
import { countCommands, startTestInstance, type TestInstance } from '../support/harness.js';
import { defineUsageFeatures, meteredAccount } from '../support/usage-fixtures.js';
import { pool, setLimit } from './fixtures.js';

const CHECKS = `query ($checks: [EntitlementCheckInput!]!) { checkEntitlements(checks: $checks) { allowed reason used } }`;
const READS = ['find', 'aggregate', 'getMore'];

let allotment: TestInstance;
beforeAll(async () => {
  // The terms cache off: the budget of a cold check (a warm one reads counters only: test/entitlements/terms-cache.test.ts).
  allotment = await startTestInstance({ env: { TERMS_CACHE_STALENESS_MS: '0' } });
  await defineUsageFeatures(allotment);
});
afterAll(() => allotment?.stop());

/** Reads one checkEntitlements request makes (the second of two: plan versions and features are cached by then). */
async function readsOf(checks: Array<{ accountId: string; feature: string }>): Promise<number> {
  await gql(allotment, CHECKS, { checks });
  const before = allotment.commands.length;
  const answer = await gql(allotment, CHECKS, { checks });
  expect(answer.checkEntitlements).toHaveLength(checks.length);
  return countCommands(allotment, READS, before);
}

describe('check-path reads with pools', () => {
  it('measures the extra reads of pooled checks against unpooled ones, for 1 and 20 checks', async () => {
    const unpooled = await Promise.all(Array.from({ length: 20 }, () => meteredAccount(allotment, { included: '100' })));
    const capped = await pool(allotment, { included: '1000', members: 20 });
    const uncapped = await pool(allotment, { included: '1000', members: 20 });
    await Promise.all(capped.members.map((member) => setLimit(allotment, member, 'api_calls', '10')));

    const figures = {
      unpooled1: await readsOf([{ accountId: unpooled[0]!.accountId, feature: 'api_calls' }]),
      unpooled20: await readsOf(unpooled.map(({ accountId }) => ({ accountId, feature: 'api_calls' }))),
      pooled1: await readsOf([{ accountId: uncapped.members[0]!, feature: 'api_calls' }]),
      pooled20: await readsOf(uncapped.members.map((accountId) => ({ accountId, feature: 'api_calls' }))),
      capped1: await readsOf([{ accountId: capped.members[0]!, feature: 'api_calls' }]),
      capped20: await readsOf(capped.members.map((accountId) => ({ accountId, feature: 'api_calls' }))),
    };
    console.info('check-path reads', JSON.stringify(figures));
    // The hierarchy costs unpooled checks nothing; one request's checks share every read.
    expect(figures.unpooled20).toBe(figures.unpooled1);
    expect(figures.pooled20).toBe(figures.pooled1);
    expect(figures.capped20).toBe(figures.capped1);
    // A pooled check: + the revision and the member's document (one query); the owner's
    // contracts come with the member's own (its likely ancestors, from the membership snapshot).
    expect(figures.pooled1 - figures.unpooled1).toBeLessThanOrEqual(1);
    // A capped member: + its share of the pool counter.
    expect(figures.capped1 - figures.pooled1).toBeLessThanOrEqual(1);
  });
});
