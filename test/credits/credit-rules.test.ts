/**
 * A burning feature (R14) keeps its own entitlement's rules: its rate limit (R19) counts
 * its own units in its own window, and its dimension rules (R20) refuse before any credit
 * is burned. The credit balance itself stays the credit feature's.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gql, publishPlan, upsertContract } from '../support/fixtures.js';
import { startTestInstance, type TestInstance } from '../support/harness.js';
import { RECORD, untilNextWindow } from '../support/rules-fixtures.js';
import { key } from '../support/usage-fixtures.js';
import { creditCounter, defineAiFeatures } from './fixtures.js';

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

const CHECK = `query ($accountId: ID!, $feature: ID!, $properties: JSON) {
  checkEntitlement(accountId: $accountId, feature: $feature, properties: $properties) { allowed reason retryAfter } }`;

async function ruledAiAccount(): Promise<string> {
  const suffix = randomUUID().replaceAll('-', '').slice(0, 10);
  await publishPlan(one, {
    key: `ai_rules_${suffix}`,
    name: 'AI with rules',
    currency: 'USD',
    entitlements: [
      { feature: 'ai_credits', included: '1000', enforcement: 'HARD' },
      {
        feature: 'gpt_large',
        credits: { feature: 'ai_credits', perUnit: '2.5' },
        rateLimit: { limit: '3', window: 'MINUTE' },
        allow: [{ key: 'region', values: ['us', 'eu'] }],
      },
      { feature: 'gpt_small', credits: { feature: 'ai_credits', perUnit: '0.1' } },
    ],
  });
  const accountId = `acct_${suffix}`;
  await upsertContract(one, { id: `ctr_${suffix}`, accountId, planKey: `ai_rules_${suffix}`, startsAt: '2026-01-01T00:00:00Z' });
  return accountId;
}

const record = async (instance: TestInstance, accountId: string, feature: string, properties?: Record<string, unknown>) =>
  (
    await gql(instance, RECORD, {
      input: { accountId, feature, quantity: '1', idempotencyKey: key(), ...(properties ? { properties } : {}) },
    })
  ).recordUsage;

describe('rules on a feature that burns credits', () => {
  it('applies the burning entitlement’s own rate limit and dimension rules, in its own units', async () => {
    const accountId = await ruledAiAccount();
    // Keep the three admitted requests inside one minute window.
    if (60_000 - (Date.now() % 60_000) < 15_000) await untilNextWindow(60_000);

    expect(await record(one, accountId, 'gpt_large', { region: 'apac' })).toMatchObject({
      status: 'REJECTED',
      reason: 'DIMENSION_NOT_ALLOWED',
    });
    expect(await record(two, accountId, 'gpt_large')).toMatchObject({ status: 'REJECTED', reason: 'DIMENSION_NOT_ALLOWED' });
    expect(await creditCounter(one, accountId)).toBeNull();

    for (const instance of [one, two, one]) {
      expect(await record(instance, accountId, 'gpt_large', { region: 'eu' })).toMatchObject({ status: 'ACCEPTED' });
    }
    const limited = await record(two, accountId, 'gpt_large', { region: 'eu' });
    expect(limited).toMatchObject({ status: 'REJECTED', reason: 'RATE_LIMITED' });
    expect(new Date(limited.retryAfter).getTime() % 60_000).toBe(0);
    const check = async (feature: string, properties?: Record<string, unknown>) =>
      (await gql(one, CHECK, { accountId, feature, properties })).checkEntitlement;
    expect(await check('gpt_large', { region: 'eu' })).toMatchObject({ allowed: false, reason: 'RATE_LIMITED' });
    expect(await check('gpt_large', { region: 'apac' })).toMatchObject({ allowed: false, reason: 'DIMENSION_NOT_ALLOWED' });

    // gpt_small has no rules of its own: no property needed, no window of gpt_large's.
    expect(await record(one, accountId, 'gpt_small')).toMatchObject({ status: 'ACCEPTED' });
    expect(await check('gpt_small')).toMatchObject({ allowed: true });

    // Only the admitted requests burned credits: 3 × 2.5 + 1 × 0.1.
    const counter = await creditCounter(one, accountId);
    expect(BigInt(counter.used)).toBe(7_600_000n);
    expect(BigInt(counter.burns.gpt_large.used)).toBe(3_000_000n);
  });
});
