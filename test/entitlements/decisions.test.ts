import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signToken, startTestInstance, type TestInstance } from '../support/harness.js';
import { ACCOUNT_ENTITLEMENT, CHECK, DECISION_FIELDS, ENTITLEMENT_FIELDS, errorCode, gql, upsertContract } from '../support/fixtures.js';
import { entitlementReads, seedEntitlementAccounts } from './fixtures.js';

let allotment: TestInstance;
const { entitlement, check, useNow } = entitlementReads(() => allotment);

const CHECKS = `query ($checks: [EntitlementCheckInput!]!) { checkEntitlements(checks: $checks) { ${DECISION_FIELDS} } }`;

beforeAll(async () => {
  allotment = await startTestInstance();
  await seedEntitlementAccounts(allotment);
});
afterAll(() => allotment.stop());

describe('the seed decision example', () => {
  it('acct_4821 bulk_export: access, capacity 50,000, used 47,210, SOFT, overage price 0.002', async () => {
    await useNow('acct_4821', 'bulk_export', '47210');
    expect(await check('acct_4821', 'bulk_export')).toMatchObject({
      allowed: true,
      reason: 'INCLUDED',
      accountId: 'acct_4821',
      feature: 'bulk_export',
      requested: '1',
      used: '47210',
      capacity: '50000',
      remaining: '2790',
      enforcement: 'SOFT',
      overageUnits: '0',
      delinquent: false,
    });
    expect(await entitlement('acct_4821', 'bulk_export')).toMatchObject({
      feature: { key: 'bulk_export', type: 'METERED' },
      hasAccess: true,
      enforcement: 'SOFT',
      included: '50000',
      granted: '0',
      capacity: '50000',
      used: '47210',
      remaining: '2790',
      overage: '0',
      percentUsed: 94.42,
      overagePrice: '0.002',
      contractIds: ['ctr_4821'],
    });
  });

  it('beyond capacity on SOFT, allows the request and counts only the excess as overage', async () => {
    expect(await check('acct_4821', 'bulk_export', '3000')).toMatchObject({
      allowed: true,
      reason: 'OVERAGE',
      overageUnits: '210',
      remaining: '2790',
    });
  });
});

describe('merging two active contracts (R4)', () => {
  beforeAll(async () => {
    await upsertContract(allotment, { id: 'ctr_m1', accountId: 'acct_merge', planKey: 'growth', startsAt: '2026-01-31T00:00:00Z' });
    await upsertContract(allotment, {
      id: 'ctr_m2',
      accountId: 'acct_merge',
      planKey: 'addon',
      startsAt: '2026-02-10T00:00:00Z',
      billingAnchor: '2026-02-10T00:00:00Z',
    });
    await upsertContract(allotment, { id: 'ctr_m3', accountId: 'acct_merge_ent', planKey: 'enterprise', startsAt: '2026-01-01T00:00:00Z' });
    await upsertContract(allotment, {
      id: 'ctr_m4',
      accountId: 'acct_merge_ent',
      planKey: 'addon',
      startsAt: '2026-02-01T00:00:00Z',
      status: 'PAST_DUE',
    });
  });

  it('sums included, keeps the least restrictive enforcement and the lowest unit price, sums grace, unions thresholds', async () => {
    expect(await entitlement('acct_merge', 'api_calls', '2026-03-15T00:00:00Z')).toMatchObject({
      included: '10500000',
      capacity: '10500000',
      enforcement: 'SOFT',
      overagePrice: '0.0001',
      grace: '105000',
      thresholds: [50, 80, 90, 100],
      // The period follows the oldest contract's Jan 31 anchor, not the add-on's Feb 10.
      periodStart: '2026-02-28T00:00:00.000Z',
      periodEnd: '2026-03-31T00:00:00.000Z',
      contractIds: ['ctr_m1', 'ctr_m2'],
    });
  });

  it('lets unlimited win, and only counts contracts in force at the instant', async () => {
    expect(await entitlement('acct_merge', 'bulk_export', '2026-03-15T00:00:00Z')).toMatchObject({
      included: null,
      capacity: null,
      enforcement: 'SOFT',
    });
    expect(await entitlement('acct_merge', 'bulk_export', '2026-02-09T00:00:00Z')).toMatchObject({
      included: '50000',
      contractIds: ['ctr_m1'],
    });
  });

  it('ORs booleans, shallow-merges config oldest first, and flags a PAST_DUE contributor delinquent', async () => {
    expect(await entitlement('acct_merge', 'admin_seats', '2026-03-15T00:00:00Z')).toMatchObject({
      hasAccess: true,
      config: { seats: 5, audit_log: true },
    });
    expect(await entitlement('acct_merge_ent', 'admin_seats', '2026-03-15T00:00:00Z')).toMatchObject({
      hasAccess: true,
      config: { seats: 5, audit_log: true },
      delinquent: true,
    });
    expect(await entitlement('acct_merge_ent', 'premium_analytics', '2026-03-15T00:00:00Z')).toMatchObject({
      hasAccess: true,
      delinquent: false,
    });
  });
});

describe('every decision reason', () => {
  beforeAll(async () => {
    await upsertContract(allotment, { id: 'ctr_hard', accountId: 'acct_hard', planKey: 'growth', startsAt: '2026-01-01T00:00:00Z' });
    await upsertContract(allotment, {
      id: 'ctr_susp',
      accountId: 'acct_susp',
      planKey: 'growth',
      startsAt: '2026-01-01T00:00:00Z',
      status: 'SUSPENDED',
    });
    await upsertContract(allotment, {
      id: 'ctr_cxl',
      accountId: 'acct_cxl',
      planKey: 'growth',
      startsAt: '2026-01-01T00:00:00Z',
      status: 'CANCELED',
    });
    await upsertContract(allotment, {
      id: 'ctr_ended',
      accountId: 'acct_ended',
      planKey: 'growth',
      startsAt: '2025-01-01T00:00:00Z',
      endsAt: '2026-01-01T00:00:00Z',
    });
    await upsertContract(allotment, {
      id: 'ctr_late',
      accountId: 'acct_pastdue',
      planKey: 'growth',
      startsAt: '2026-01-01T00:00:00Z',
      status: 'PAST_DUE',
    });
    await useNow('acct_hard', 'api_calls', '10000000');
  });

  it('INCLUDED up to the included amount, and for zero units', async () => {
    expect(await check('acct_4821', 'api_calls', '10000000')).toMatchObject({ allowed: true, reason: 'INCLUDED' });
    expect(await check('acct_hard', 'api_calls', '0')).toMatchObject({ allowed: true, reason: 'INCLUDED', remaining: '0', requested: '0' });
  });

  it('WITHIN_GRACE on HARD beyond capacity up to capacity + grace, then QUOTA_EXCEEDED', async () => {
    expect(await check('acct_hard', 'api_calls', '100000')).toMatchObject({
      allowed: true,
      reason: 'WITHIN_GRACE',
      overageUnits: '100000',
      used: '10000000',
    });
    expect(await check('acct_hard', 'api_calls', '100000.000001')).toMatchObject({
      allowed: false,
      reason: 'QUOTA_EXCEEDED',
      overageUnits: '0',
    });
  });

  it('OVERAGE on SOFT beyond capacity', async () => {
    expect(await check('acct_4821', 'bulk_export', '2790.5')).toMatchObject({ allowed: true, reason: 'OVERAGE', overageUnits: '0.5' });
  });

  it('NOT_ENTITLED for a disabled feature and for an account with no contract', async () => {
    expect(await check('acct_4821', 'premium_analytics')).toMatchObject({ allowed: false, reason: 'NOT_ENTITLED' });
    expect(await check('acct_nobody', 'api_calls')).toMatchObject({
      allowed: false,
      reason: 'NOT_ENTITLED',
      capacity: '0',
      periodEnd: null,
    });
  });

  it('CONTRACT_INACTIVE for suspended, canceled and ended contracts; PAST_DUE keeps access, delinquent', async () => {
    for (const account of ['acct_susp', 'acct_cxl', 'acct_ended']) {
      expect(await check(account, 'api_calls'), account).toMatchObject({ allowed: false, reason: 'CONTRACT_INACTIVE' });
      expect(await check(account, 'sso'), account).toMatchObject({ allowed: false, reason: 'CONTRACT_INACTIVE' });
    }
    expect(await check('acct_pastdue', 'api_calls')).toMatchObject({ allowed: true, reason: 'INCLUDED', delinquent: true });
  });

  it('UNKNOWN_FEATURE for a feature the catalog does not define', async () => {
    expect(await check('acct_4821', 'teleport')).toMatchObject({ allowed: false, reason: 'UNKNOWN_FEATURE' });
    expect(await entitlement('acct_4821', 'teleport')).toBeNull();
  });

  it('INCLUDED for boolean and unlimited features', async () => {
    expect(await check('acct_4821', 'sso')).toMatchObject({
      allowed: true,
      reason: 'INCLUDED',
      capacity: null,
      remaining: null,
      periodEnd: null,
    });
    expect(await check('acct_ent', 'bulk_export', '999999999')).toMatchObject({
      allowed: true,
      reason: 'INCLUDED',
      capacity: null,
      enforcement: 'NONE',
    });
  });

  it.each([
    ['-1', /must not be negative/],
    ['1.0000001', /more than 6 fractional digits/],
    ['ten', /not a decimal/],
  ])('refuses requestedUnits %j with BAD_USER_INPUT', async (requestedUnits, message) => {
    const response = await allotment.graphql(CHECK, { accountId: 'acct_4821', feature: 'api_calls', requestedUnits });
    expect(errorCode(response)).toBe('BAD_USER_INPUT');
    expect(response.errors?.[0]?.message).toMatch(message);
  });
});

describe('Contract.entitlements', () => {
  it("shows one contract's own terms, where Account.entitlements merges", async () => {
    const { _entities } = await gql(
      allotment,
      `query { _entities(representations: [{ __typename: "Contract", id: "ctr_m2" }]) { ... on Contract { plan { key } entitlements { ${ENTITLEMENT_FIELDS} } } } }`,
    );
    const [contract] = _entities;
    expect(contract.plan.key).toBe('addon');
    expect(contract.entitlements.map((e: any) => [e.feature.key, e.included, e.enforcement])).toEqual([
      ['admin_seats', null, 'HARD'],
      ['api_calls', '500000', 'SOFT'],
      ['bulk_export', null, 'SOFT'],
    ]);
  });

  it('lists the features of a contract that is no longer in force, without access', async () => {
    const { _entities } = await gql(
      allotment,
      `query { _entities(representations: [{ __typename: "Contract", id: "ctr_ended" }]) { ... on Contract { entitlements { feature { key } hasAccess denialReason } } } }`,
    );
    expect(_entities[0].entitlements).toContainEqual({
      feature: { key: 'api_calls' },
      hasAccess: false,
      denialReason: 'CONTRACT_INACTIVE',
    });
    expect(_entities[0].entitlements).toHaveLength(4);
  });
});

describe('customer-token isolation', () => {
  it('lets a customer read and check its own account only', async () => {
    const token = await signToken({ sub: 'user_4821', scope: 'entitlements:read', account_id: 'acct_4821' });
    const own = await allotment.graphql(CHECK, { accountId: 'acct_4821', feature: 'bulk_export' }, { token });
    expect(own.data?.checkEntitlement.allowed).toBe(true);
    expect((await entitlement('acct_4821', 'bulk_export', undefined, token)).used).toBe('47210');

    const other = await allotment.graphql(CHECK, { accountId: 'acct_ent', feature: 'api_calls' }, { token });
    expect(errorCode(other)).toBe('FORBIDDEN');
    expect(other.data).toBeNull();

    const mixed = await allotment.graphql(
      CHECKS,
      {
        checks: [
          { accountId: 'acct_4821', feature: 'sso' },
          { accountId: 'acct_ent', feature: 'sso' },
        ],
      },
      { token },
    );
    expect(errorCode(mixed)).toBe('FORBIDDEN');
    expect(mixed.data).toBeNull();

    const entity = await allotment.graphql(ACCOUNT_ENTITLEMENT, { id: 'acct_ent', feature: 'api_calls' }, { token });
    expect(errorCode(entity)).toBe('FORBIDDEN');
    expect(entity.data?._entities).toEqual([null]);
  });

  it('needs entitlements:read to check', async () => {
    const token = await signToken({ scope: 'usage:write' });
    expect(errorCode(await allotment.graphql(CHECK, { accountId: 'acct_4821', feature: 'sso' }, { token }))).toBe('FORBIDDEN');
    expect(errorCode(await allotment.graphql(CHECK, { accountId: 'acct_4821', feature: 'sso' }, { token: null }))).toBe('UNAUTHENTICATED');
  });
});
