/**
 * Credit-based plans (R14) against the real wire server: a burning feature's usage lands
 * on its credit feature's counter as credits, in the guarded update that enforces the
 * credit balance; its own units are kept for usage and reporting; checks answer in its
 * own units; top-ups are grants on the credit feature; the plan is validated.
 */
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gql, publishPlan } from '../support/fixtures.js';
import { countCommands, startTestInstance, type TestInstance } from '../support/harness.js';
import { key, recordBatch, recordUsageOk, type UsageInput } from '../support/usage-fixtures.js';
import { aiAccount, CREDIT_CHECK, creditCounter, creditEntitlement, defineAiFeatures } from './fixtures.js';

let one: TestInstance;
let two: TestInstance;
beforeAll(async () => {
  one = await startTestInstance();
  two = await startTestInstance({ dbName: one.dbName });
  await defineAiFeatures(one);
});
afterAll(async () => {
  await two?.stop();
  await one?.stop();
});

const use = (instance: TestInstance, accountId: string, feature: string, quantity: string) =>
  recordUsageOk(instance, { accountId, feature, quantity, idempotencyKey: key() });

const USAGE_SERIES = `query ($id: ID!, $feature: ID!) {
  _entities(representations: [{ __typename: "Account", id: $id }]) { ... on Account { usage(feature: $feature, granularity: MONTH) { total } } } }`;

describe('a feature that burns credits', () => {
  it('burns perUnit credits per unit on the credit counter, keeping its own units beside them', async () => {
    const { accountId } = await aiAccount(one, { credits: '1000' });
    expect((await use(one, accountId, 'gpt_large', '10')).status).toBe('ACCEPTED');
    expect((await use(two, accountId, 'gpt_small', '3.3')).status).toBe('ACCEPTED');

    const counter = await creditCounter(one, accountId);
    // 10 × 2.5 + 3.3 × 0.1 = 25.33 credits, exact.
    expect(BigInt(counter.used)).toBe(25_330_000n);
    expect(BigInt(counter.burns.gpt_large.used)).toBe(10_000_000n);
    expect(BigInt(counter.burns.gpt_small.used)).toBe(3_300_000n);
    expect(await one.database.db.collection('usage_counters').countDocuments({ accountId, feature: { $ne: 'ai_credits' } })).toBe(0);

    expect(await creditEntitlement(one, accountId, 'ai_credits')).toMatchObject({
      used: '25.33',
      capacity: '1000',
      remaining: '974.67',
      creditFeature: null,
    });
    // (1000 − 25.33) ÷ 2.5 = 389.868 gpt_large requests left.
    expect(await creditEntitlement(two, accountId, 'gpt_large')).toMatchObject({
      feature: { key: 'gpt_large' },
      hasAccess: true,
      enforcement: 'HARD',
      used: '10',
      remaining: '389.868',
      capacity: '399.868',
      creditFeature: 'ai_credits',
      creditsPerUnit: '2.5',
    });
    const series = async (feature: string) => (await gql(one, USAGE_SERIES, { id: accountId, feature }))._entities[0].usage.total;
    expect(await series('gpt_large')).toBe('10');
    expect(await series('gpt_small')).toBe('3.3');
    expect(await series('ai_credits')).toBe('25.33');
  });

  it('checkEntitlement answers in its own units, and HARD denies what the credits cannot pay', async () => {
    const { accountId } = await aiAccount(one, { credits: '100' });
    await use(one, accountId, 'gpt_small', '100'); // 10 credits
    const check = async (feature: string, requestedUnits: string) =>
      (await gql(one, CREDIT_CHECK, { accountId, feature, requestedUnits })).checkEntitlement;
    expect(await check('gpt_large', '36')).toMatchObject({ allowed: true, used: '0', remaining: '36', capacity: '36', requested: '36' });
    expect(await check('gpt_large', '36.000001')).toMatchObject({ allowed: false, reason: 'QUOTA_EXCEEDED', remaining: '36' });
    expect(await check('gpt_small', '900')).toMatchObject({ allowed: true, used: '100', remaining: '900', capacity: '1000' });

    const denied = await use(two, accountId, 'gpt_large', '36.5');
    expect(denied).toMatchObject({ status: 'REJECTED', reason: 'QUOTA_EXCEEDED', quantity: '36.5' });
    expect((await use(two, accountId, 'gpt_large', '36')).status).toBe('ACCEPTED');
    expect(BigInt((await creditCounter(one, accountId)).used)).toBe(100_000_000n);
    expect((await use(one, accountId, 'gpt_small', '0.000001')).status).toBe('REJECTED');
  });

  it('a grant on the credit feature is a top-up every burning feature can use', async () => {
    const { accountId } = await aiAccount(one, { credits: '10' });
    expect((await use(one, accountId, 'gpt_large', '4')).status).toBe('ACCEPTED');
    expect((await use(one, accountId, 'gpt_large', '1')).status).toBe('REJECTED');
    await gql(one, `mutation ($input: IssueGrantInput!) { issueGrant(input: $input) { id } }`, {
      input: { accountId, feature: 'ai_credits', amount: '5', reason: 'top-up', idempotencyKey: key(), kind: 'PREPAID' },
    });
    expect(await creditEntitlement(two, accountId, 'gpt_large')).toMatchObject({ used: '4', remaining: '2', granted: '2' });
    expect((await use(two, accountId, 'gpt_large', '2')).status).toBe('ACCEPTED');
    expect((await use(two, accountId, 'gpt_small', '0.1')).status).toBe('REJECTED');
  });

  it('a retried burn counts once', async () => {
    const { accountId } = await aiAccount(one, { credits: '100' });
    const input = { accountId, feature: 'gpt_large', quantity: '2', idempotencyKey: key() };
    const [a, b] = await Promise.all([recordUsageOk(one, input), recordUsageOk(two, input)]);
    expect([a.status, b.status].sort()).toEqual(['ACCEPTED', 'DUPLICATE']);
    const counter = await creditCounter(one, accountId);
    expect(BigInt(counter.used)).toBe(5_000_000n);
    expect(BigInt(counter.burns.gpt_large.used)).toBe(2_000_000n);
  });
});

describe('the race of the issue: 100,000 ai_credits, gpt_large at 2.5 and gpt_small at 0.1, two instances', () => {
  it('ends at exactly 100,000 credits burned, and the accepted units pay for exactly that', async () => {
    const { accountId } = await aiAccount(one);
    // Every event costs 1,000 credits (400 gpt_large or 10,000 gpt_small): 140,000 asked in all.
    const sends: Array<() => Promise<{ large: number; small: number }>> = [];
    for (let i = 0; i < 60; i++) {
      const instance = i % 2 === 0 ? one : two;
      if (i % 3 === 0) {
        const events: UsageInput[] = Array.from({ length: 5 }, (_, j) => ({
          accountId,
          feature: j % 2 === 0 ? 'gpt_large' : 'gpt_small',
          quantity: j % 2 === 0 ? '400' : '10000',
          idempotencyKey: key(),
        }));
        sends.push(async () => {
          const { receipts } = (await recordBatch(instance, events)).data!.recordUsageBatch;
          let large = 0;
          let small = 0;
          for (const receipt of receipts) {
            if (receipt.status !== 'ACCEPTED') continue;
            if (receipt.feature === 'gpt_large') large += Number(receipt.quantity);
            else small += Number(receipt.quantity);
          }
          return { large, small };
        });
      } else {
        const large = i % 2 === 0;
        sends.push(() =>
          use(instance, accountId, large ? 'gpt_large' : 'gpt_small', large ? '400' : '10000').then((receipt) =>
            receipt.status !== 'ACCEPTED' ? { large: 0, small: 0 } : large ? { large: 400, small: 0 } : { large: 0, small: 10000 },
          ),
        );
      }
    }
    const results = await Promise.all(sends.sort(() => Math.random() - 0.5).map((send) => send()));
    const large = results.reduce((sum, r) => sum + r.large, 0);
    const small = results.reduce((sum, r) => sum + r.small, 0);
    const counter = await creditCounter(one, accountId);
    expect(BigInt(counter.used)).toBe(100_000_000_000n);
    expect(large * 2.5 + small * 0.1).toBe(100_000);
    expect(BigInt(counter.burns.gpt_large.used)).toBe(BigInt(large) * 1_000_000n);
    expect(BigInt(counter.burns.gpt_small.used)).toBe(BigInt(small) * 1_000_000n);
    expect(await creditEntitlement(two, accountId, 'ai_credits')).toMatchObject({ used: '100000', remaining: '0' });
  });
});

describe('property: whatever the burning features ask, a HARD credit balance is never overshot', () => {
  it('holds for random balances and requests from both features on two instances', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 300 }),
        fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 1, max: 80 })), { minLength: 1, maxLength: 20 }),
        async (credits, asks) => {
          const { accountId } = await aiAccount(one, { credits: String(credits) });
          const receipts = await Promise.all(
            asks.map(([large, q], i) => use(i % 2 ? one : two, accountId, large ? 'gpt_large' : 'gpt_small', String(q))),
          );
          const counter = await creditCounter(one, accountId);
          const used = counter ? BigInt(counter.used) : 0n;
          expect(used).toBeLessThanOrEqual(BigInt(credits) * 1_000_000n);
          // Every accepted unit is paid for, and nothing else: used = Σ accepted × perUnit.
          const paid = receipts.reduce(
            (sum, receipt, i) => (receipt.status === 'ACCEPTED' ? sum + BigInt(asks[i]![1]) * (asks[i]![0] ? 2_500_000n : 100_000n) : sum),
            0n,
          );
          expect(used).toBe(paid);
        },
      ),
      { numRuns: 8 },
    );
  });
});

describe('validation of a credit-based plan', () => {
  const plan = (entitlements: unknown[]) =>
    one.graphql(`mutation ($input: PlanInput!) { publishPlan(input: $input) { key } }`, {
      input: { key: `bad_${randomUUID().replaceAll('-', '').slice(0, 10)}`, name: 'Bad', currency: 'USD', entitlements },
    });
  const refusal = async (entitlements: unknown[]) => {
    const response = await plan(entitlements);
    expect(response.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    return response.errors![0]!.message;
  };

  it('refuses unknown, missing, chained, self, pooled and non-positive credit costs, naming the field', async () => {
    const credits = (feature: string, perUnit = '1') => ({ feature, perUnit });
    expect(await refusal([{ feature: 'gpt_large', credits: credits('nope') }])).toMatch(
      /entitlements\[0\]\.credits\.feature: unknown feature "nope"/,
    );
    expect(await refusal([{ feature: 'gpt_large', credits: credits('ai_credits') }])).toMatch(
      /no entitlement for credit feature "ai_credits"/,
    );
    expect(
      await refusal([
        { feature: 'ai_credits', included: '10', credits: credits('gpt_small') },
        { feature: 'gpt_small', included: '10' },
        { feature: 'gpt_large', credits: credits('ai_credits') },
      ]),
    ).toMatch(/chains are not allowed/);
    expect(await refusal([{ feature: 'gpt_large', credits: credits('gpt_large') }])).toMatch(/cannot burn credits of itself/);
    expect(
      await refusal([
        { feature: 'ai_credits', included: '10' },
        { feature: 'gpt_large', pooled: true, credits: credits('ai_credits') },
      ]),
    ).toMatch(/pooled entitlement cannot burn credits/);
    expect(
      await refusal([
        { feature: 'ai_credits', included: '10' },
        { feature: 'gpt_large', credits: credits('ai_credits', '0') },
      ]),
    ).toMatch(/perUnit/);
    await publishPlan(one, {
      key: `ok_${randomUUID().replaceAll('-', '').slice(0, 10)}`,
      name: 'Ok',
      currency: 'USD',
      entitlements: [
        { feature: 'ai_credits', included: '10' },
        { feature: 'gpt_large', credits: credits('ai_credits', '0.000001') },
      ],
    });
  });

  it('an override can make a feature burn credits, and null makes it count on its own again', async () => {
    const { accountId, contractId } = await aiAccount(one, { credits: '100' });
    const override = `mutation ($contractId: ID!, $input: EntitlementOverrideInput!) { setEntitlementOverride(contractId: $contractId, input: $input) { id } }`;
    await gql(one, override, { contractId, input: { feature: 'gpt_large', credits: { feature: 'ai_credits', perUnit: '10' } } });
    await use(one, accountId, 'gpt_large', '1');
    expect(BigInt((await creditCounter(one, accountId)).used)).toBe(10_000_000n);
    const refused = await one.graphql(override, {
      contractId,
      input: { feature: 'gpt_large', credits: { feature: 'gpt_small', perUnit: '1' } },
    });
    expect(refused.errors?.[0]?.message).toMatch(/chains are not allowed|no entitlement/);
    await gql(one, override, { contractId, input: { feature: 'gpt_large', credits: null, included: '5' } });
    expect(await creditEntitlement(one, accountId, 'gpt_large')).toMatchObject({ creditFeature: null, capacity: '5', used: '0' });
  });
});

describe('the check path', () => {
  const CHECKS = `query ($checks: [EntitlementCheckInput!]!) { checkEntitlements(checks: $checks) { allowed remaining } }`;
  /** Reads of one checkEntitlements request (the second of two: plan versions and features are cached by then). */
  async function readsOf(checks: Array<{ accountId: string; feature: string }>): Promise<number> {
    await gql(one, CHECKS, { checks });
    const before = one.commands.length;
    expect((await gql(one, CHECKS, { checks })).checkEntitlements).toHaveLength(checks.length);
    return countCommands(one, ['find', 'aggregate', 'getMore'], before);
  }

  it('costs burning features no read more than their credit feature, however many checks', async () => {
    const accounts = await Promise.all(Array.from({ length: 10 }, () => aiAccount(one)));
    const credit = await readsOf(accounts.map(({ accountId }) => ({ accountId, feature: 'ai_credits' })));
    const burning = await readsOf(
      accounts.flatMap(({ accountId }) => [
        { accountId, feature: 'gpt_large' },
        { accountId, feature: 'gpt_small' },
      ]),
    );
    const one1 = await readsOf([{ accountId: accounts[0]!.accountId, feature: 'gpt_large' }]);
    expect(burning).toBe(credit);
    expect(one1).toBe(credit);
  });
});
