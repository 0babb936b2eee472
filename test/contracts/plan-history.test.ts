import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestInstance, type TestInstance } from '../support/harness.js';
import { CONTRACT_FIELDS, UPSERT_CONTRACT, errorCode, gql, insertUsage, publishPlan, upsertContract } from '../support/fixtures.js';
import { contractReads, seedContractPlans } from './fixtures.js';

let allotment: TestInstance;
const { db, entitlement, contractWrites, auditEntries } = contractReads(() => allotment);

const CHANGE_PLAN = `mutation ($contractId: ID!, $planKey: ID!, $version: Int, $effectiveAt: DateTime) {
  changeContractPlan(contractId: $contractId, planKey: $planKey, version: $version, effectiveAt: $effectiveAt) { ${CONTRACT_FIELDS} } }`;

beforeAll(async () => {
  allotment = await startTestInstance();
  await seedContractPlans(allotment);
});
afterAll(() => allotment.stop());

describe('grandfathering (R2)', () => {
  it('keeps contracts on their pinned version after the plan is republished', async () => {
    await publishPlan(allotment, {
      key: 'legacy',
      name: 'Legacy',
      currency: 'USD',
      entitlements: [{ feature: 'api_calls', included: '1000' }],
    });
    await upsertContract(allotment, { id: 'ctr_gf', accountId: 'acct_gf', planKey: 'legacy', startsAt: '2026-01-01T00:00:00Z' });
    await publishPlan(allotment, {
      key: 'legacy',
      name: 'Legacy',
      currency: 'USD',
      entitlements: [{ feature: 'api_calls', included: '500' }],
    });

    expect((await entitlement('acct_gf', 'api_calls')).included).toBe('1000');
    // A re-sync from the billing system without a version does not move the contract.
    const resynced = await upsertContract(allotment, {
      id: 'ctr_gf',
      accountId: 'acct_gf',
      planKey: 'legacy',
      startsAt: '2026-01-01T00:00:00Z',
    });
    expect(resynced.plan).toEqual({ key: 'legacy', version: 1 });
    expect((await entitlement('acct_gf', 'api_calls')).included).toBe('1000');

    // New contracts get the latest version.
    await upsertContract(allotment, { id: 'ctr_gf_new', accountId: 'acct_gf_new', planKey: 'legacy', startsAt: '2026-01-01T00:00:00Z' });
    expect((await entitlement('acct_gf_new', 'api_calls')).included).toBe('500');

    // Moving explicitly applies the new terms.
    await gql(allotment, CHANGE_PLAN, { contractId: 'ctr_gf', planKey: 'legacy', version: 2 });
    expect((await entitlement('acct_gf', 'api_calls')).included).toBe('500');
  });
});

describe('changeContractPlan (R3)', () => {
  it('appends to the plan history and applies the new included amount to the whole current period', async () => {
    await publishPlan(allotment, {
      key: 'scale',
      name: 'Scale',
      currency: 'USD',
      entitlements: [
        { feature: 'api_calls', included: '25000000', grace: '100000', overage: { unitPrice: '0.15', per: '1000' } },
        { feature: 'premium_analytics' },
      ],
    });
    await upsertContract(allotment, { id: 'ctr_up', accountId: 'acct_up', planKey: 'growth', startsAt: '2026-01-31T00:00:00Z' });
    // 10,050,000 calls counted in the Feb 28 – Mar 31 period: past growth's 10,000,000.
    await insertUsage(db(), {
      accountId: 'acct_up',
      feature: 'api_calls',
      periodStart: '2026-02-28T00:00:00Z',
      periodEnd: '2026-03-31T00:00:00Z',
      used: '10050000',
    });
    const { changeContractPlan } = await gql(allotment, CHANGE_PLAN, {
      contractId: 'ctr_up',
      planKey: 'scale',
      effectiveAt: '2026-03-10T00:00:00Z',
    });
    expect(changeContractPlan.planHistory).toEqual([
      { planKey: 'growth', planVersion: 1, effectiveAt: '2026-01-31T00:00:00.000Z' },
      { planKey: 'scale', planVersion: 1, effectiveAt: '2026-03-10T00:00:00.000Z' },
    ]);
    expect(changeContractPlan.plan).toEqual({ key: 'scale', version: 1 });

    // Just before the change: growth's terms, over capacity.
    expect(await entitlement('acct_up', 'api_calls', '2026-03-09T23:59:59Z')).toMatchObject({
      included: '10000000',
      used: '10050000',
      remaining: '0',
      overage: '50000',
      percentUsed: 100.5,
    });
    expect(await entitlement('acct_up', 'premium_analytics', '2026-03-09T23:59:59Z')).toMatchObject({
      hasAccess: false,
      denialReason: 'NOT_ENTITLED',
    });
    // From the change on: scale's included covers the whole period; the usage counted stays.
    expect(await entitlement('acct_up', 'api_calls', '2026-03-10T00:00:00Z')).toMatchObject({
      included: '25000000',
      used: '10050000',
      remaining: '14950000',
      overage: '0',
      periodStart: '2026-02-28T00:00:00.000Z',
      periodEnd: '2026-03-31T00:00:00.000Z',
    });
    expect(await entitlement('acct_up', 'premium_analytics', '2026-03-10T00:00:00Z')).toMatchObject({ hasAccess: true });
    const check = `query ($at: DateTime) { checkEntitlement(accountId: "acct_up", feature: "api_calls", requestedUnits: "60000", at: $at) { allowed reason } }`;
    expect((await gql(allotment, check, { at: '2026-03-09T12:00:00Z' })).checkEntitlement).toEqual({
      allowed: false,
      reason: 'QUOTA_EXCEEDED',
    });
    expect((await gql(allotment, check, { at: '2026-03-10T12:00:00Z' })).checkEntitlement).toEqual({ allowed: true, reason: 'INCLUDED' });
    expect((await auditEntries('ctr_up')).map((e) => e.action)).toEqual(['contract.upserted', 'contract.plan_changed']);
  });

  it('refuses an effectiveAt before the contract starts or before the last change, an unknown version or another currency', async () => {
    await upsertContract(allotment, { id: 'ctr_chg', accountId: 'acct_chg', planKey: 'growth', startsAt: '2026-02-01T00:00:00Z' });
    const before = await contractWrites();
    const cases: Array<[Record<string, unknown>, string, RegExp]> = [
      [{ planKey: 'enterprise', effectiveAt: '2026-01-01T00:00:00Z' }, 'BAD_USER_INPUT', /before the contract starts/],
      [{ planKey: 'growth', version: 42 }, 'BAD_USER_INPUT', /no version 42/],
      [{ planKey: 'euro_growth' }, 'BAD_USER_INPUT', /keeps one currency/],
      [{ contractId: 'ctr_missing', planKey: 'growth' }, 'NOT_FOUND', /does not exist/],
    ];
    for (const [args, code, message] of cases) {
      const response = await allotment.graphql(CHANGE_PLAN, { contractId: 'ctr_chg', ...args });
      expect(errorCode(response)).toBe(code);
      expect(response.errors?.[0]?.message).toMatch(message);
    }
    expect(await contractWrites()).toEqual(before);

    await gql(allotment, CHANGE_PLAN, { contractId: 'ctr_chg', planKey: 'enterprise', effectiveAt: '2026-05-01T00:00:00Z' });
    const backwards = await allotment.graphql(CHANGE_PLAN, {
      contractId: 'ctr_chg',
      planKey: 'growth',
      effectiveAt: '2026-04-01T00:00:00Z',
    });
    expect(errorCode(backwards)).toBe('BAD_USER_INPUT');
    expect(backwards.errors?.[0]?.message).toMatch(/before the last plan change/);

    const resync = await allotment.graphql(UPSERT_CONTRACT, {
      input: { id: 'ctr_chg', accountId: 'acct_chg', planKey: 'enterprise', startsAt: '2026-06-01T00:00:00Z' },
    });
    expect(errorCode(resync)).toBe('BAD_USER_INPUT');
    expect(resync.errors?.[0]?.message).toMatch(/cannot move past the plan change/);
  });
});
