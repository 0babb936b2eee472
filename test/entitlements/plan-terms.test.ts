import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestInstance, type TestInstance } from '../support/harness.js';
import { ACCOUNT_ENTITLEMENTS, gql, publishPlan, upsertContract } from '../support/fixtures.js';
import { entitlementReads, seedEntitlementAccounts } from './fixtures.js';

let allotment: TestInstance;
const { entitlement, check } = entitlementReads(() => allotment);

beforeAll(async () => {
  allotment = await startTestInstance();
  await seedEntitlementAccounts(allotment);
});
afterAll(() => allotment.stop());

describe('the growth plan', () => {
  it('api_calls: 10,000,000 included, 0.20 per 1,000 overage, 100,000 grace, monthly reset', async () => {
    expect(await entitlement('acct_4821', 'api_calls', '2026-03-15T12:00:00Z')).toEqual({
      feature: { key: 'api_calls', type: 'METERED' },
      hasAccess: true,
      enforcement: 'HARD',
      included: '10000000',
      granted: '0',
      capacity: '10000000',
      grace: '100000',
      used: '0',
      remaining: '10000000',
      overage: '0',
      percentUsed: 0,
      overagePrice: '0.0002',
      periodStart: '2026-02-28T00:00:00.000Z',
      periodEnd: '2026-03-31T00:00:00.000Z',
      delinquent: false,
      config: null,
      resetPeriod: 'MONTH',
      thresholds: [80, 90, 100],
      denialReason: null,
      contractIds: ['ctr_4821'],
    });
  });

  it('lists every feature the contract speaks about', async () => {
    const { _entities } = await gql(allotment, ACCOUNT_ENTITLEMENTS, { id: 'acct_4821' });
    expect(_entities[0].entitlements.map((e: any) => [e.feature.key, e.hasAccess])).toEqual([
      ['api_calls', true],
      ['bulk_export', true],
      ['premium_analytics', false],
      ['sso', true],
    ]);
  });
});

describe('the enterprise gate', () => {
  it('gives 1,000,000 API calls, 3 admin seats as config, premium analytics and unlimited exports', async () => {
    expect(await entitlement('acct_ent', 'api_calls')).toMatchObject({ included: '1000000', capacity: '1000000', overagePrice: '0.0001' });
    expect(await entitlement('acct_ent', 'admin_seats')).toMatchObject({
      hasAccess: true,
      config: { seats: 3 },
      capacity: null,
      periodStart: null,
    });
    expect(await check('acct_ent', 'premium_analytics')).toMatchObject({ allowed: true, reason: 'INCLUDED', capacity: null });
    expect(await check('acct_ent', 'bulk_export', '1000000000')).toMatchObject({
      allowed: true,
      reason: 'INCLUDED',
      capacity: null,
      remaining: null,
    });
  });

  it('keeps premium analytics off the growth contract', async () => {
    expect(await check('acct_4821', 'premium_analytics')).toMatchObject({ allowed: false, reason: 'NOT_ENTITLED' });
    expect(await check('acct_4821', 'admin_seats')).toMatchObject({ allowed: false, reason: 'NOT_ENTITLED' });
    expect(await entitlement('acct_4821', 'premium_analytics')).toMatchObject({
      hasAccess: false,
      denialReason: 'NOT_ENTITLED',
      config: null,
    });
  });
});

describe('anniversary periods in the API', () => {
  const period = async (at: string, accountId = 'acct_4821', feature = 'api_calls') => {
    const { periodStart, periodEnd } = await entitlement(accountId, feature, at);
    return [periodStart, periodEnd];
  };

  it('clamps a Jan 31 anchor to month ends without drifting', async () => {
    expect(await period('2026-02-15T00:00:00Z')).toEqual(['2026-01-31T00:00:00.000Z', '2026-02-28T00:00:00.000Z']);
    expect(await period('2026-03-01T00:00:00Z')).toEqual(['2026-02-28T00:00:00.000Z', '2026-03-31T00:00:00.000Z']);
    expect(await period('2026-04-30T12:00:00Z')).toEqual(['2026-04-30T00:00:00.000Z', '2026-05-31T00:00:00.000Z']);
    expect(await period('2026-03-31T00:00:00Z')).toEqual(['2026-03-31T00:00:00.000Z', '2026-04-30T00:00:00.000Z']);
  });

  it('uses Feb 29 in leap years', async () => {
    expect(await period('2028-02-29T23:59:59Z')).toEqual(['2028-02-29T00:00:00.000Z', '2028-03-31T00:00:00.000Z']);
    expect(await period('2027-03-01T00:00:00Z')).toEqual(['2027-02-28T00:00:00.000Z', '2027-03-31T00:00:00.000Z']);
  });

  it('keeps a yearly Feb 29 anchor on Feb 28 in common years and Feb 29 in leap years', async () => {
    await publishPlan(allotment, {
      key: 'annual',
      name: 'Annual',
      currency: 'USD',
      billingPeriod: 'YEAR',
      entitlements: [{ feature: 'api_calls', included: '1', resetPeriod: 'YEAR' }],
    });
    await upsertContract(allotment, { id: 'ctr_leap', accountId: 'acct_leap', planKey: 'annual', startsAt: '2024-02-29T10:00:00Z' });
    expect(await period('2025-06-01T00:00:00Z', 'acct_leap')).toEqual(['2025-02-28T10:00:00.000Z', '2026-02-28T10:00:00.000Z']);
    expect(await period('2028-03-01T00:00:00Z', 'acct_leap')).toEqual(['2028-02-29T10:00:00.000Z', '2029-02-28T10:00:00.000Z']);
    const decision = await check('acct_leap', 'api_calls', '1', '2028-02-29T09:59:59Z');
    expect(decision).toMatchObject({ periodStart: '2027-02-28T10:00:00.000Z', periodEnd: '2028-02-29T10:00:00.000Z' });
  });
});
