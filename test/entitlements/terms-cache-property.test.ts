/**
 * The terms cache's contract as a property: over random sequences of terms changes (plan
 * changes, overrides, status, moves between pools, caps) made on either of two instances,
 * a check on the instance that made the change decides at once as an instance with the
 * cache off does, and a check on the other instance does so once the bound has passed.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gql, publishPlan, upsertContract } from '../support/fixtures.js';
import { startTestInstance, type TestInstance } from '../support/harness.js';
import { sleep } from '../support/terms-cache.js';
import { defineUsageFeatures } from '../support/usage-fixtures.js';
import { accountName, pool, setLimit, setParent } from '../hierarchy/fixtures.js';

const BOUND = 200;
const CHECKS = `query ($checks: [EntitlementCheckInput!]!) { checkEntitlements(checks: $checks) { allowed reason } }`;

let instances: [TestInstance, TestInstance];
let off: TestInstance;
let account: string;
let contractId: string;
let member: string;
const plans = { roomy: '', tight: '' };
const owners: string[] = [];

beforeAll(async () => {
  const env = { TERMS_CACHE_STALENESS_MS: String(BOUND) };
  const first = await startTestInstance({ env });
  instances = [first, await startTestInstance({ dbName: first.dbName, env })];
  off = await startTestInstance({ dbName: first.dbName, env: { TERMS_CACHE_STALENESS_MS: '0' } });
  await defineUsageFeatures(first);
  account = accountName('prop');
  contractId = `ctr_${account}`;
  plans.roomy = `roomy_${account}`;
  plans.tight = `tight_${account}`;
  for (const [key, included] of [
    [plans.roomy, '10'],
    [plans.tight, '3'],
  ] as const) {
    await publishPlan(first, { key, name: key, currency: 'USD', entitlements: [{ feature: 'api_calls', included, enforcement: 'HARD' }] });
  }
  await upsertContract(first, { id: contractId, accountId: account, planKey: plans.roomy, startsAt: '2026-01-01T00:00:00Z' });
  owners.push((await pool(first, { included: '100' })).ownerId, (await pool(first, { included: '3' })).ownerId);
  member = accountName('prop_member');
});
afterAll(async () => {
  await off?.stop();
  await instances?.[1]?.stop();
  await instances?.[0]?.stop();
});

type Change =
  | { kind: 'plan'; plan: 'roomy' | 'tight' }
  | { kind: 'override'; included: number | null }
  | { kind: 'status'; status: 'ACTIVE' | 'CANCELED' }
  | { kind: 'parent'; owner: 0 | 1 | null }
  | { kind: 'limit'; limit: number | null };

const change: fc.Arbitrary<Change> = fc.oneof(
  fc.record({ kind: fc.constant('plan' as const), plan: fc.constantFrom('roomy' as const, 'tight' as const) }),
  fc.record({ kind: fc.constant('override' as const), included: fc.option(fc.integer({ min: 0, max: 12 })) }),
  fc.record({ kind: fc.constant('status' as const), status: fc.constantFrom('ACTIVE' as const, 'CANCELED' as const) }),
  fc.record({ kind: fc.constant('parent' as const), owner: fc.constantFrom(0 as const, 1 as const, null) }),
  fc.record({ kind: fc.constant('limit' as const), limit: fc.option(fc.integer({ min: 1, max: 9 })) }),
);

/** Applies a change; one the API refuses (e.g. the plan already pinned) changes nothing, which is fine here. */
async function apply(on: TestInstance, step: Change): Promise<void> {
  switch (step.kind) {
    case 'plan':
      await on.graphql(`mutation ($c: ID!, $p: ID!) { changeContractPlan(contractId: $c, planKey: $p) { id } }`, {
        c: contractId,
        p: plans[step.plan],
      });
      return;
    case 'override':
      await on.graphql(
        step.included === null
          ? `mutation ($c: ID!) { clearEntitlementOverride(contractId: $c, feature: "api_calls") { id } }`
          : `mutation ($c: ID!, $n: Decimal) { setEntitlementOverride(contractId: $c, input: { feature: "api_calls", included: $n }) { id } }`,
        { c: contractId, ...(step.included === null ? {} : { n: String(step.included) }) },
      );
      return;
    case 'status':
      await on.graphql(`mutation ($c: ID!, $s: ContractStatus!) { setContractStatus(contractId: $c, status: $s) { id } }`, {
        c: contractId,
        s: step.status,
      });
      return;
    case 'parent':
      await setParent(on, member, step.owner === null ? null : owners[step.owner]!);
      return;
    case 'limit':
      await setLimit(on, member, 'api_calls', step.limit === null ? null : String(step.limit));
  }
}

async function decisions(instance: TestInstance) {
  const checks = [
    { accountId: account, feature: 'api_calls', requestedUnits: '5' },
    { accountId: member, feature: 'api_calls', requestedUnits: '4' },
  ];
  return (await gql(instance, CHECKS, { checks })).checkEntitlements;
}

describe('terms cache property', () => {
  it('decides as the uncached instance: at once where the change was made, after the bound elsewhere', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.constantFrom(0 as const, 1 as const), change), { minLength: 1, maxLength: 5 }),
        async (steps) => {
          for (const [on, step] of steps) {
            // Both caches warm before the change, so a missed invalidation would show.
            await decisions(instances[0]);
            await decisions(instances[1]);
            await apply(instances[on], step);
            expect(await decisions(instances[on]), `same instance after ${JSON.stringify(step)}`).toEqual(await decisions(off));
            await sleep(BOUND + 50);
            expect(await decisions(instances[1 - on]!), `other instance after ${JSON.stringify(step)}`).toEqual(await decisions(off));
          }
        },
      ),
      { numRuns: 6 },
    );
  }, 120_000);
});
