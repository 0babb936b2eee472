import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signToken, startTestInstance, type TestInstance } from '../support/harness.js';
import {
  DEFINE_FEATURE,
  GROWTH_PLAN,
  PUBLISH_PLAN,
  defineCatalog,
  errorCode,
  gql,
  publishGrowthPlan,
  publishPlan,
} from '../support/fixtures.js';

let allotment: TestInstance;
const db = () => allotment.database.db;

const PLAN = `query ($key: ID!, $version: Int) { plan(key: $key, version: $version) {
  key version name currency baseFee billingPeriod publishedBy
  entitlements { feature { key name type unit } enabled included resetPeriod enforcement grace overage { unitPrice per rounding } thresholds config }
} }`;

async function auditActions(targetId: string): Promise<string[]> {
  const entries = await db().collection('audit_log').find({ targetId }).sort({ _id: 1 }).toArray();
  return entries.map((entry) => entry.action);
}

/** Writes to the catalog and the audit log, to show a refused mutation wrote nothing. */
async function catalogWrites(): Promise<number[]> {
  return Promise.all(['features', 'plan_versions', 'audit_log'].map((name) => db().collection(name).countDocuments()));
}

beforeAll(async () => {
  allotment = await startTestInstance();
  await defineCatalog(allotment);
});
afterAll(() => allotment.stop());

describe('defineFeature', () => {
  it('creates a feature and lists it', async () => {
    const { features } = await gql(allotment, '{ features { key name type unit } }');
    expect(features).toEqual([
      { key: 'admin_seats', name: 'Admin seats', type: 'BOOLEAN', unit: null },
      { key: 'api_calls', name: 'API calls', type: 'METERED', unit: 'call' },
      { key: 'bulk_export', name: 'Bulk exports', type: 'METERED', unit: 'export' },
      { key: 'premium_analytics', name: 'Premium analytics', type: 'BOOLEAN', unit: null },
      { key: 'sso', name: 'Single sign-on', type: 'BOOLEAN', unit: null },
    ]);
  });

  it('is idempotent: redefining updates name and unit, and is audited with before and after', async () => {
    const input = { key: 'storage_gb', name: 'Storage', type: 'METERED', unit: 'GB' };
    await gql(allotment, DEFINE_FEATURE, { input });
    const { defineFeature } = await gql(allotment, DEFINE_FEATURE, { input: { ...input, name: 'Object storage', unit: 'GiB' } });
    expect(defineFeature).toEqual({ key: 'storage_gb', name: 'Object storage', type: 'METERED', unit: 'GiB' });
    expect(await auditActions('storage_gb')).toEqual(['feature.defined', 'feature.defined']);
    const last = await db()
      .collection('audit_log')
      .findOne({ targetId: 'storage_gb' }, { sort: { _id: -1 } });
    expect(last).toMatchObject({
      actor: 'test-operator',
      targetType: 'Feature',
      before: { name: 'Storage', unit: 'GB' },
      after: { name: 'Object storage', unit: 'GiB' },
    });
    expect(last?.requestId).toEqual(expect.any(String));
  });

  it('refuses to change the type of an existing feature, and writes nothing', async () => {
    const before = await catalogWrites();
    const response = await allotment.graphql(DEFINE_FEATURE, { input: { key: 'api_calls', name: 'API calls', type: 'BOOLEAN' } });
    expect(errorCode(response)).toBe('BAD_USER_INPUT');
    expect(response.errors?.[0]?.message).toMatch(/api_calls.*METERED.*cannot change/);
    expect(await catalogWrites()).toEqual(before);
    expect(
      (
        await db()
          .collection('features')
          .findOne({ _id: 'api_calls' as never })
      )?.type,
    ).toBe('METERED');
  });

  it.each(['API_calls', '1calls', 'api-calls', '', 'a'.repeat(65)])('refuses the bad feature key %j', async (key) => {
    const before = await catalogWrites();
    const response = await allotment.graphql(DEFINE_FEATURE, { input: { key, name: 'x', type: 'METERED' } });
    expect(errorCode(response)).toBe('BAD_USER_INPUT');
    expect(response.errors?.[0]?.message).toMatch(/not a valid key/);
    expect(await catalogWrites()).toEqual(before);
  });
});

describe('publishPlan and plan', () => {
  it('publishes the growth plan and reads its terms back exactly', async () => {
    const published = await publishGrowthPlan(allotment);
    expect(published).toMatchObject({
      key: 'growth',
      version: 1,
      currency: 'USD',
      baseFee: '499',
      billingPeriod: 'MONTH',
      publishedBy: 'test-operator',
    });
    const { plan } = await gql(allotment, PLAN, { key: 'growth', version: 1 });
    expect(plan.entitlements[0]).toEqual({
      feature: { key: 'api_calls', name: 'API calls', type: 'METERED', unit: 'call' },
      enabled: true,
      included: '10000000',
      resetPeriod: 'MONTH',
      enforcement: 'HARD',
      grace: '100000',
      overage: { unitPrice: '0.2', per: '1000', rounding: 'UP' },
      thresholds: [80, 90, 100],
      config: null,
    });
    expect(plan.entitlements.map((e: any) => [e.feature.key, e.enabled])).toEqual([
      ['api_calls', true],
      ['bulk_export', true],
      ['sso', true],
      ['premium_analytics', false],
    ]);
    expect(await auditActions('growth@1')).toEqual(['plan.published']);
  });

  it('publishes version N+1 on republish, and plan() without a version gives the latest', async () => {
    const v2 = await publishGrowthPlan(allotment, { name: 'Growth 2026' });
    expect(v2.version).toBe(2);
    expect((await gql(allotment, PLAN, { key: 'growth' })).plan).toMatchObject({ version: 2, name: 'Growth 2026' });
    expect((await gql(allotment, PLAN, { key: 'growth', version: 1 })).plan).toMatchObject({ version: 1, name: 'Growth' });
    expect((await gql(allotment, PLAN, { key: 'growth', version: 9 })).plan).toBeNull();
    expect((await gql(allotment, PLAN, { key: 'nope' })).plan).toBeNull();
  });

  it('gives concurrent publishers distinct consecutive versions', async () => {
    const input = { key: 'race', name: 'Race', currency: 'EUR', entitlements: [{ feature: 'sso' }] };
    const versions = await Promise.all(Array.from({ length: 6 }, () => publishPlan(allotment, input).then((plan) => plan.version)));
    expect(versions.sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('defaults thresholds to 80/90/100 and sorts and de-duplicates given ones', async () => {
    const plan = await publishPlan(allotment, {
      key: 'thresholds',
      name: 'T',
      currency: 'USD',
      entitlements: [
        { feature: 'api_calls', included: '1' },
        { feature: 'bulk_export', included: '0', thresholds: [100, 50, 50, 1000] },
      ],
    });
    expect(plan.entitlements.map((e: any) => e.thresholds)).toEqual([
      [80, 90, 100],
      [50, 100, 1000],
    ]);
    expect(plan.entitlements[1].included).toBe('0');
  });

  const invalid: Array<[string, Record<string, unknown>, RegExp]> = [
    ['an unknown feature', { entitlements: [{ feature: 'teleport' }] }, /Unknown feature "teleport".*defineFeature/],
    ['a duplicate feature', { entitlements: [{ feature: 'sso' }, { feature: 'sso' }] }, /appears twice/],
    ['a negative included', { entitlements: [{ feature: 'api_calls', included: '-5' }] }, /included must not be negative/],
    ['a negative grace', { entitlements: [{ feature: 'api_calls', grace: '-1' }] }, /grace must not be negative/],
    ['too many decimals', { entitlements: [{ feature: 'api_calls', included: '1.0000001' }] }, /more than 6 fractional digits/],
    ['threshold 0', { entitlements: [{ feature: 'api_calls', thresholds: [0, 80] }] }, /between 1 and 1000/],
    ['threshold 1001', { entitlements: [{ feature: 'api_calls', thresholds: [1001] }] }, /between 1 and 1000/],
    ['a zero unit price', { entitlements: [{ feature: 'api_calls', overage: { unitPrice: '0' } }] }, /unitPrice must be greater than zero/],
    [
      'a zero block size',
      { entitlements: [{ feature: 'api_calls', overage: { unitPrice: '1', per: '0' } }] },
      /per must be greater than zero/,
    ],
    ['included on a BOOLEAN feature', { entitlements: [{ feature: 'sso', included: '5' }] }, /does not apply to BOOLEAN/],
    ['a lower-case currency', { currency: 'usd' }, /ISO 4217/],
    ['a negative base fee', { baseFee: '-1' }, /baseFee/],
    ['a bad plan key', { key: 'Growth Plan' }, /not a valid key/],
    ['a NEVER billing period', { billingPeriod: 'NEVER' }, /billingPeriod/],
    ['a "$" config key', { entitlements: [{ feature: 'sso', config: { $where: 1 } }] }, /must not start with "\$"/],
  ];
  it.each(invalid)('refuses %s with BAD_USER_INPUT and writes nothing', async (_case, change, message) => {
    const before = await catalogWrites();
    const response = await allotment.graphql(PUBLISH_PLAN, { input: { ...GROWTH_PLAN, key: 'invalid', ...change } });
    expect(errorCode(response)).toBe('BAD_USER_INPUT');
    expect(response.errors?.[0]?.message).toMatch(message);
    expect(await catalogWrites()).toEqual(before);
  });
});

describe('catalog authorization', () => {
  it('needs catalog:write to publish or define, and entitlements:read to read', async () => {
    const reader = await signToken({ scope: 'entitlements:read' });
    expect(errorCode(await allotment.graphql(DEFINE_FEATURE, { input: { key: 'x', name: 'x', type: 'BOOLEAN' } }, { token: reader }))).toBe(
      'FORBIDDEN',
    );
    expect(errorCode(await allotment.graphql(PUBLISH_PLAN, { input: GROWTH_PLAN }, { token: reader }))).toBe('FORBIDDEN');
    expect((await allotment.graphql('{ features { key } }', {}, { token: reader })).data?.features.length).toBeGreaterThan(0);

    const writerOnly = await signToken({ scope: 'catalog:write' });
    expect(errorCode(await allotment.graphql('{ features { key } }', {}, { token: writerOnly }))).toBe('FORBIDDEN');
    expect(errorCode(await allotment.graphql(PLAN, { key: 'growth' }, { token: writerOnly }))).toBe('FORBIDDEN');
    expect(errorCode(await allotment.graphql('{ features { key } }', {}, { token: null }))).toBe('UNAUTHENTICATED');
  });

  it('refuses catalog writes from customer tokens even when they claim the scope', async () => {
    const customer = await signToken({ sub: 'user_1', scope: 'catalog:write entitlements:read', account_id: 'acct_4821' });
    const response = await allotment.graphql(DEFINE_FEATURE, { input: { key: 'sneaky', name: 'x', type: 'BOOLEAN' } }, { token: customer });
    expect(errorCode(response)).toBe('FORBIDDEN');
  });
});
