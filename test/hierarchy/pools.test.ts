/**
 * Pooled entitlements (R13) against the real wire server: members without an entitlement
 * of their own draw from the nearest pooled ancestor; a HARD pool and every member's cap
 * hold under a concurrent race from all members on two instances; grants on the owner
 * raise the pool; re-parenting moves new usage only.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHECK, gql } from '../support/fixtures.js';
import { startTestInstance, type TestInstance } from '../support/harness.js';
import { defineUsageFeatures, key, recordBatch, recordUsageOk, type UsageInput } from '../support/usage-fixtures.js';
import { accountName, POOL_ENTITLEMENT, pool, setLimit, setParent } from './fixtures.js';
import { afterTermsBound as afterBound } from '../support/terms-cache.js';

let one: TestInstance;
let two: TestInstance;
beforeAll(async () => {
  one = await startTestInstance();
  two = await startTestInstance({ dbName: one.dbName });
  await defineUsageFeatures(one);
});
afterAll(async () => {
  await two?.stop();
  await one?.stop();
});

async function entitlement(instance: TestInstance, id: string, feature = 'api_calls') {
  return (await gql(instance, POOL_ENTITLEMENT, { id, feature }))._entities[0].entitlement;
}

async function poolCounter(ownerId: string) {
  return one.database.db.collection<any>('usage_counters').findOne({ accountId: ownerId, feature: 'api_calls' });
}

const use = (instance: TestInstance, accountId: string, quantity: string) =>
  recordUsageOk(instance, { accountId, feature: 'api_calls', quantity, idempotencyKey: key() });

describe('a member without an entitlement of its own', () => {
  it('draws from the pool: one counter, the owner’s capacity, its own share and cap', async () => {
    const { ownerId, members } = await pool(one, { included: '1000', members: 2 });
    const [a, b] = members as [string, string];
    await setLimit(one, b, 'api_calls', '300');
    expect((await use(one, a, '100')).status).toBe('ACCEPTED');
    expect((await use(two, b, '250')).status).toBe('ACCEPTED');
    expect((await use(one, ownerId, '50')).status).toBe('ACCEPTED');

    expect(await entitlement(two, a)).toEqual({
      hasAccess: true,
      used: '400',
      capacity: '1000',
      remaining: '600',
      pooledFrom: ownerId,
      accountUsed: '100',
      accountLimit: null,
    });
    expect(await entitlement(one, b)).toMatchObject({ used: '400', pooledFrom: ownerId, accountUsed: '250', accountLimit: '300' });
    expect(await entitlement(one, ownerId)).toMatchObject({ used: '400', pooledFrom: null, accountUsed: '400', accountLimit: null });

    // The cap refuses b's 51st unit beyond 250 even though the pool has room; checks agree.
    const check = await gql(one, CHECK, { accountId: b, feature: 'api_calls', requestedUnits: '51' });
    expect(check.checkEntitlement).toMatchObject({ allowed: false, reason: 'QUOTA_EXCEEDED', used: '400' });
    expect(await use(two, b, '51')).toMatchObject({ status: 'REJECTED', reason: 'QUOTA_EXCEEDED' });
    expect((await use(two, b, '50')).status).toBe('ACCEPTED');

    const counter = await poolCounter(ownerId);
    expect(BigInt(counter.used)).toBe(450_000_000n);
    // Members' usage counts once, at the pool: no counter of their own.
    expect(await one.database.db.collection('usage_counters').countDocuments({ accountId: { $in: members } })).toBe(0);
  });

  it('lists pooled features in Account.entitlements, and a grandchild draws from the nearest pooled ancestor', async () => {
    const { ownerId, members } = await pool(one, { included: '500', members: 1 });
    const grandchild = accountName('grand');
    expect((await setParent(one, grandchild, members[0]!)).errors).toBeUndefined();
    await use(one, grandchild, '5');
    const listed = await gql(
      one,
      `query ($id: ID!) { _entities(representations: [{ __typename: "Account", id: $id }]) { ... on Account { entitlements { feature { key } pooledFrom accountUsed used } } } }`,
      { id: grandchild },
    );
    expect(listed._entities[0].entitlements).toEqual([{ feature: { key: 'api_calls' }, pooledFrom: ownerId, accountUsed: '5', used: '5' }]);
  });

  it('keeps its own entitlement when it has one: it is not a member of the pool for that feature', async () => {
    const { ownerId } = await pool(one, { included: '500' });
    const child = accountName('own');
    const plan = `own_${child}`;
    await gql(one, `mutation ($input: PlanInput!) { publishPlan(input: $input) { key } }`, {
      input: { key: plan, name: 'own', currency: 'USD', entitlements: [{ feature: 'api_calls', included: '10' }] },
    });
    await gql(one, `mutation ($input: ContractInput!) { upsertContract(input: $input) { id } }`, {
      input: { id: `c_${child}`, accountId: child, planKey: plan, startsAt: '2026-01-01T00:00:00Z' },
    });
    await setParent(one, child, ownerId);
    await use(one, child, '3');
    expect(await entitlement(one, child)).toMatchObject({ capacity: '10', used: '3', pooledFrom: null, accountUsed: '3' });
    expect(await poolCounter(ownerId)).toBeNull();
  });
});

describe('pooled: true on an override', () => {
  it('turns a contract’s own entitlement into a pool, and clearing it ends the draw', async () => {
    const { ownerId, contractId, members } = await pool(one, { included: '100', members: 1 });
    const plan = `unpooled_${ownerId}`;
    await gql(one, `mutation ($input: PlanInput!) { publishPlan(input: $input) { key } }`, {
      input: { key: plan, name: 'unpooled', currency: 'USD', entitlements: [{ feature: 'api_calls', included: '40' }] },
    });
    const otherOwner = accountName('override_owner');
    await gql(one, `mutation ($input: ContractInput!) { upsertContract(input: $input) { id } }`, {
      input: { id: `c_${otherOwner}`, accountId: otherOwner, planKey: plan, startsAt: '2026-01-01T00:00:00Z' },
    });
    const member = accountName('override_member');
    await setParent(one, member, otherOwner);
    expect(await use(one, member, '1')).toMatchObject({ status: 'REJECTED', reason: 'NOT_ENTITLED' });

    const override = `mutation ($c: ID!, $input: EntitlementOverrideInput!) { setEntitlementOverride(contractId: $c, input: $input) { overrides { feature pooled } } }`;
    const set = await gql(one, override, { c: `c_${otherOwner}`, input: { feature: 'api_calls', pooled: true } });
    expect(set.setEntitlementOverride.overrides).toEqual([{ feature: 'api_calls', pooled: true }]);
    await afterBound();
    expect(await use(two, member, '1')).toMatchObject({ status: 'ACCEPTED' });
    expect(await entitlement(one, member)).toMatchObject({ capacity: '40', pooledFrom: otherOwner, accountUsed: '1' });

    await gql(one, override, { c: `c_${otherOwner}`, input: { feature: 'api_calls', pooled: false } });
    await afterBound();
    expect(await use(two, member, '1')).toMatchObject({ status: 'REJECTED', reason: 'NOT_ENTITLED' });
    // The plan-pooled pool next door was never touched.
    expect(await entitlement(one, members[0]!)).toMatchObject({ pooledFrom: ownerId, used: '0' });
    expect(contractId).toBeTruthy();
  });
});

describe('the race of the issue: a 1,000,000-unit HARD pool, 4 members, one capped at 300,000', () => {
  it('ends at exactly its capacity on two instances, and no member exceeds its cap', async () => {
    const { ownerId, members } = await pool(one, { included: '1000000', members: 4 });
    await setLimit(one, members[0]!, 'api_calls', '300000');
    // Every member asks for 500,000 in 2,500-unit requests and batches: 2,000,000 in all.
    const requests = members.flatMap((member, m) =>
      Array.from({ length: 40 }, (_, i) => {
        const instance = (i + m) % 2 === 0 ? one : two;
        if (i % 4 === 0) {
          const events = Array.from(
            { length: 5 },
            (): UsageInput => ({ accountId: member, feature: 'api_calls', quantity: '2500', idempotencyKey: key() }),
          );
          return () => recordBatch(instance, events).then((response) => response.data!.recordUsageBatch.accepted * 2500);
        }
        return () => use(instance, member, '12500').then((receipt) => (receipt.status === 'ACCEPTED' ? 12500 : 0));
      }),
    );
    const accepted = await Promise.all(requests.sort(() => Math.random() - 0.5).map((send) => send()));
    const counter = await poolCounter(ownerId);
    expect(BigInt(counter.used)).toBe(1_000_000_000_000n);
    expect(accepted.reduce((sum, units) => sum + units, 0)).toBe(1_000_000);
    const shares = Object.values(counter.members as Record<string, bigint>).map((share) => BigInt(share));
    expect(shares.reduce((sum, share) => sum + share, 0n)).toBe(1_000_000_000_000n);
    expect((await entitlement(one, members[0]!)).accountUsed).not.toBe(undefined);
    expect(Number((await entitlement(one, members[0]!)).accountUsed)).toBeLessThanOrEqual(300_000);
    expect(await entitlement(two, members[1]!)).toMatchObject({ used: '1000000', remaining: '0', pooledFrom: ownerId });
  });
});

describe('property: whatever members ask, a HARD pool and the caps are never overshot', () => {
  it('holds for random caps and requests from 3 members on two instances', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 10, max: 200 }),
        fc.array(fc.option(fc.integer({ min: 0, max: 150 }), { nil: null }), { minLength: 3, maxLength: 3 }),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 1, max: 60 })), { minLength: 1, maxLength: 25 }),
        async (included, caps, asks) => {
          const { ownerId, members } = await pool(one, { included: String(included), members: 3 });
          await Promise.all(caps.map((cap, i) => (cap === null ? undefined : setLimit(one, members[i]!, 'api_calls', String(cap)))));
          await Promise.all(asks.map(([m, q], i) => use(i % 2 ? one : two, members[m]!, String(q))));
          const counter = await poolCounter(ownerId);
          const used = counter ? BigInt(counter.used) / 1_000_000n : 0n;
          expect(used).toBeLessThanOrEqual(BigInt(included));
          for (const [i, member] of members.entries()) {
            const share = BigInt((await entitlement(one, member)).accountUsed);
            if (caps[i] !== null) expect(share).toBeLessThanOrEqual(BigInt(caps[i]!));
          }
        },
      ),
      { numRuns: 8 },
    );
  });
});

describe('grants and re-parenting', () => {
  it('a grant on the owner raises the pool; a member’s own grant does not', async () => {
    const { ownerId, members } = await pool(one, { included: '100', members: 1 });
    const grant = `mutation ($input: IssueGrantInput!) { issueGrant(input: $input) { id } }`;
    const input = (accountId: string) => ({ accountId, feature: 'api_calls', amount: '50', reason: 'pool test', idempotencyKey: key() });
    await gql(one, grant, { input: input(members[0]!) });
    expect((await entitlement(one, members[0]!)).capacity).toBe('100');
    await gql(one, grant, { input: input(ownerId) });
    expect((await entitlement(two, members[0]!)).capacity).toBe('150');
    expect((await use(one, members[0]!, '150')).status).toBe('ACCEPTED');
    expect((await use(one, members[0]!, '1')).status).toBe('REJECTED');
  });

  it('new usage follows the new parent; counted usage stays where it was', async () => {
    const first = await pool(one, { included: '1000', members: 1 });
    const second = await pool(one, { included: '1000' });
    const member = first.members[0]!;
    await use(one, member, '30');
    expect((await setParent(two, member, second.ownerId)).errors).toBeUndefined();
    // Instance one cached the old lineage: the move reaches it within the terms cache's bound.
    await afterBound();
    await use(one, member, '7');
    expect(BigInt((await poolCounter(first.ownerId)).used)).toBe(30_000_000n);
    expect(BigInt((await poolCounter(second.ownerId)).used)).toBe(7_000_000n);
    expect(await entitlement(one, member)).toMatchObject({ pooledFrom: second.ownerId, accountUsed: '7', used: '7' });
    await setParent(one, member, null);
    await afterBound();
    expect(await use(two, member, '1')).toMatchObject({ status: 'REJECTED', reason: 'NOT_ENTITLED' });
  });
});
