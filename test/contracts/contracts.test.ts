import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signToken, startTestInstance, type TestInstance } from '../support/harness.js';
import {
  ACCOUNT_ENTITLEMENT,
  CONTRACT_FIELDS,
  UPSERT_CONTRACT,
  defineCatalog,
  errorCode,
  gql,
  insertUsage,
  publishEnterprisePlan,
  publishGrowthPlan,
  publishPlan,
  upsertContract,
} from '../support/fixtures.js';

let allotment: TestInstance;
const db = () => allotment.database.db;

const CHANGE_PLAN = `mutation ($contractId: ID!, $planKey: ID!, $version: Int, $effectiveAt: DateTime) {
  changeContractPlan(contractId: $contractId, planKey: $planKey, version: $version, effectiveAt: $effectiveAt) { ${CONTRACT_FIELDS} } }`;
const SET_OVERRIDE = `mutation ($contractId: ID!, $input: EntitlementOverrideInput!) {
  setEntitlementOverride(contractId: $contractId, input: $input) {
    id overrides { feature fields enabled included enforcement grace overage { unitPrice per rounding } thresholds config } } }`;
const CLEAR_OVERRIDE = `mutation ($contractId: ID!, $feature: ID!) { clearEntitlementOverride(contractId: $contractId, feature: $feature) { id overrides { feature } } }`;
const SET_STATUS = `mutation ($contractId: ID!, $status: ContractStatus!) { setContractStatus(contractId: $contractId, status: $status) { id status } }`;
const CONTRACT = `query ($id: ID!) { _entities(representations: [{ __typename: "Contract", id: $id }]) { ... on Contract { ${CONTRACT_FIELDS} } } }`;

async function entitlement(accountId: string, feature: string, at?: string) {
  return (await gql(allotment, ACCOUNT_ENTITLEMENT, { id: accountId, feature, at }))._entities[0].entitlement;
}

async function contractWrites(): Promise<number[]> {
  return Promise.all([
    db().collection('contracts').countDocuments(),
    db().collection('audit_log').countDocuments(),
    db()
      .collection('contracts')
      .countDocuments({ revision: { $gt: 1 } }),
  ]);
}

async function auditEntries(targetId: string) {
  return db().collection('audit_log').find({ targetId }).sort({ _id: 1 }).toArray();
}

beforeAll(async () => {
  allotment = await startTestInstance();
  await defineCatalog(allotment);
  await publishGrowthPlan(allotment);
  await publishEnterprisePlan(allotment);
  await publishPlan(allotment, {
    key: 'euro_growth',
    name: 'Growth (EUR)',
    currency: 'EUR',
    entitlements: [{ feature: 'api_calls', included: '5000' }],
  });
});
afterAll(() => allotment.stop());

describe('upsertContract', () => {
  it('pins the latest version when planVersion is omitted, and anchors billing at startsAt', async () => {
    const contract = await upsertContract(allotment, {
      id: 'ctr_new',
      accountId: 'acct_new',
      planKey: 'growth',
      startsAt: '2026-02-15T10:00:00Z',
    });
    expect(contract).toEqual({
      id: 'ctr_new',
      status: 'ACTIVE',
      startsAt: '2026-02-15T10:00:00.000Z',
      endsAt: null,
      billingAnchor: '2026-02-15T10:00:00.000Z',
      plan: { key: 'growth', version: 1 },
      planHistory: [{ planKey: 'growth', planVersion: 1, effectiveAt: '2026-02-15T10:00:00.000Z' }],
    });
    const [entry] = await auditEntries('ctr_new');
    expect(entry).toMatchObject({
      action: 'contract.upserted',
      actor: 'test-operator',
      targetType: 'Contract',
      accountId: 'acct_new',
      before: null,
      after: { planKey: 'growth', planVersion: 1 },
    });
  });

  it('updates an existing contract in place, keeping its id and account', async () => {
    await upsertContract(allotment, { id: 'ctr_upd', accountId: 'acct_upd', planKey: 'growth', startsAt: '2026-01-01T00:00:00Z' });
    const updated = await upsertContract(allotment, {
      id: 'ctr_upd',
      accountId: 'acct_upd',
      planKey: 'growth',
      status: 'TRIALING',
      startsAt: '2026-01-01T00:00:00Z',
      endsAt: '2027-01-01T00:00:00Z',
      billingAnchor: '2026-01-05T00:00:00Z',
    });
    expect(updated).toMatchObject({ status: 'TRIALING', endsAt: '2027-01-01T00:00:00.000Z', billingAnchor: '2026-01-05T00:00:00.000Z' });
    const entries = await auditEntries('ctr_upd');
    expect(entries.map((e) => e.action)).toEqual(['contract.upserted', 'contract.upserted']);
    expect(entries[1]).toMatchObject({ before: { status: 'ACTIVE' }, after: { status: 'TRIALING' } });

    const moved = await allotment.graphql(UPSERT_CONTRACT, {
      input: { id: 'ctr_upd', accountId: 'acct_other', planKey: 'growth', startsAt: '2026-01-01T00:00:00Z' },
    });
    expect(errorCode(moved)).toBe('BAD_USER_INPUT');
    expect(moved.errors?.[0]?.message).toMatch(/cannot move to another account/);
  });

  const invalid: Array<[string, Record<string, unknown>, RegExp]> = [
    ['an unknown plan', { planKey: 'platinum' }, /Unknown plan "platinum".*publishPlan/],
    ['an unknown plan version', { planKey: 'growth', planVersion: 7 }, /Plan "growth" has no version 7; the latest is 1/],
    ['endsAt before startsAt', { endsAt: '2026-03-31T00:00:00Z', startsAt: '2026-04-01T00:00:00Z' }, /endsAt .* must be after startsAt/],
    ['endsAt equal to startsAt', { endsAt: '2026-04-01T00:00:00Z', startsAt: '2026-04-01T00:00:00Z' }, /must be after startsAt/],
    ['a bad plan key', { planKey: 'Growth!' }, /not a valid key/],
    ['a "|" in the account id', { accountId: 'acct|x' }, /not a valid id/],
  ];
  it.each(invalid)('refuses %s with BAD_USER_INPUT and writes nothing', async (_case, change, message) => {
    const before = await contractWrites();
    const input = { id: 'ctr_bad', accountId: 'acct_bad', planKey: 'growth', startsAt: '2026-04-01T00:00:00Z', ...change };
    const response = await allotment.graphql(UPSERT_CONTRACT, { input });
    expect(errorCode(response)).toBe('BAD_USER_INPUT');
    expect(response.errors?.[0]?.message).toMatch(message);
    expect(await contractWrites()).toEqual(before);
  });

  it('refuses a currency mismatch with an overlapping contract of the account, and writes nothing', async () => {
    await upsertContract(allotment, {
      id: 'ctr_usd',
      accountId: 'acct_fx',
      planKey: 'growth',
      startsAt: '2026-01-01T00:00:00Z',
      endsAt: '2026-07-01T00:00:00Z',
    });
    const before = await contractWrites();
    const response = await allotment.graphql(UPSERT_CONTRACT, {
      input: { id: 'ctr_eur', accountId: 'acct_fx', planKey: 'euro_growth', startsAt: '2026-06-01T00:00:00Z' },
    });
    expect(errorCode(response)).toBe('BAD_USER_INPUT');
    expect(response.errors?.[0]?.message).toMatch(/Currency mismatch: contract "ctr_usd".*USD.*EUR/);
    expect(await contractWrites()).toEqual(before);

    // After the USD contract ends, a EUR contract is fine.
    await upsertContract(allotment, { id: 'ctr_eur', accountId: 'acct_fx', planKey: 'euro_growth', startsAt: '2026-07-01T00:00:00Z' });
  });
});

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

describe('setEntitlementOverride', () => {
  it('replaces only the given fields, accumulates across calls and validates like plan terms', async () => {
    await upsertContract(allotment, { id: 'ctr_ovr', accountId: 'acct_ovr', planKey: 'growth', startsAt: '2026-01-01T00:00:00Z' });
    await gql(allotment, SET_OVERRIDE, { contractId: 'ctr_ovr', input: { feature: 'api_calls', included: '20000000' } });
    const { setEntitlementOverride } = await gql(allotment, SET_OVERRIDE, {
      contractId: 'ctr_ovr',
      input: { feature: 'api_calls', enforcement: 'SOFT', config: { burst: 50 } },
    });
    expect(setEntitlementOverride.overrides).toEqual([
      {
        feature: 'api_calls',
        fields: ['included', 'enforcement', 'config'],
        enabled: null,
        included: '20000000',
        enforcement: 'SOFT',
        grace: null,
        overage: null,
        thresholds: null,
        config: { burst: 50 },
      },
    ]);
    expect(await entitlement('acct_ovr', 'api_calls')).toMatchObject({
      included: '20000000',
      enforcement: 'SOFT',
      grace: '100000',
      overagePrice: '0.0002',
      config: { burst: 50 },
    });

    // An override can enable a feature the plan disables, for this contract only.
    await gql(allotment, SET_OVERRIDE, { contractId: 'ctr_ovr', input: { feature: 'premium_analytics', enabled: true } });
    expect((await entitlement('acct_ovr', 'premium_analytics')).hasAccess).toBe(true);

    // included: null means unlimited.
    await gql(allotment, SET_OVERRIDE, { contractId: 'ctr_ovr', input: { feature: 'bulk_export', included: null } });
    expect(await entitlement('acct_ovr', 'bulk_export')).toMatchObject({
      included: null,
      capacity: null,
      remaining: null,
      percentUsed: null,
    });

    const entries = await auditEntries('ctr_ovr');
    expect(entries.map((e) => e.action)).toEqual([
      'contract.upserted',
      'contract.override_set',
      'contract.override_set',
      'contract.override_set',
      'contract.override_set',
    ]);
    expect(entries[2]).toMatchObject({
      before: { overrides: { api_calls: { included: '20000000' } } },
      after: { overrides: { api_calls: { included: '20000000', enforcement: 'SOFT' } } },
    });
  });

  it('refuses bad overrides with BAD_USER_INPUT and writes nothing', async () => {
    const before = await contractWrites();
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ feature: 'api_calls', included: '-1' }, /included must not be negative/],
      [{ feature: 'api_calls', thresholds: [2000] }, /between 1 and 1000/],
      [{ feature: 'api_calls' }, /sets no field/],
      [{ feature: 'api_calls', enabled: null }, /cannot be null/],
      [{ feature: 'teleport', enabled: true }, /Unknown feature "teleport"/],
      [{ feature: 'sso', included: '5' }, /does not apply to BOOLEAN/],
      [{ feature: 'api_calls', overage: { unitPrice: '0' } }, /greater than zero/],
    ];
    for (const [input, message] of cases) {
      const response = await allotment.graphql(SET_OVERRIDE, { contractId: 'ctr_ovr', input });
      expect(errorCode(response), JSON.stringify(input)).toBe('BAD_USER_INPUT');
      expect(response.errors?.[0]?.message).toMatch(message);
    }
    expect(errorCode(await allotment.graphql(SET_OVERRIDE, { contractId: 'ctr_nope', input: { feature: 'sso', enabled: true } }))).toBe(
      'NOT_FOUND',
    );
    expect(await contractWrites()).toEqual(before);
  });

  it('clears a feature override so the plan applies again', async () => {
    const { clearEntitlementOverride } = await gql(allotment, CLEAR_OVERRIDE, { contractId: 'ctr_ovr', feature: 'premium_analytics' });
    expect(clearEntitlementOverride.overrides.map((o: any) => o.feature)).toEqual(['api_calls', 'bulk_export']);
    expect((await entitlement('acct_ovr', 'premium_analytics')).hasAccess).toBe(false);
  });
});

describe('setContractStatus', () => {
  it('changes the status, is audited, and decides access (R4)', async () => {
    await upsertContract(allotment, { id: 'ctr_st', accountId: 'acct_st', planKey: 'growth', startsAt: '2026-01-01T00:00:00Z' });
    await gql(allotment, SET_STATUS, { contractId: 'ctr_st', status: 'PAST_DUE' });
    expect(await entitlement('acct_st', 'sso')).toMatchObject({ hasAccess: true, delinquent: true });
    await gql(allotment, SET_STATUS, { contractId: 'ctr_st', status: 'SUSPENDED' });
    expect(await entitlement('acct_st', 'sso')).toMatchObject({ hasAccess: false, denialReason: 'CONTRACT_INACTIVE' });
    const entries = await auditEntries('ctr_st');
    expect(entries.map((e) => e.action)).toEqual(['contract.upserted', 'contract.status_set', 'contract.status_set']);
    expect(entries[2]).toMatchObject({
      before: { status: 'PAST_DUE' },
      after: { status: 'SUSPENDED' },
      accountId: 'acct_st',
      requestId: expect.any(String),
    });
    expect(errorCode(await allotment.graphql(SET_STATUS, { contractId: 'ctr_nope', status: 'ACTIVE' }))).toBe('NOT_FOUND');
  });

  it('records every status change in statusHistory at the instant it is made, and canceledAt while CANCELED', async () => {
    const STATUS_FIELDS = `query ($id: ID!) { _entities(representations: [{ __typename: "Contract", id: $id }]) { ... on Contract { status canceledAt statusHistory { status at } } } }`;
    await upsertContract(allotment, {
      id: 'ctr_hist',
      accountId: 'acct_hist',
      planKey: 'growth',
      startsAt: '2026-01-01T00:00:00Z',
      status: 'TRIALING',
    });
    const before = Date.now();
    await gql(allotment, SET_STATUS, { contractId: 'ctr_hist', status: 'ACTIVE' });
    await gql(allotment, SET_STATUS, { contractId: 'ctr_hist', status: 'ACTIVE' }); // no change, no entry
    await gql(allotment, SET_STATUS, { contractId: 'ctr_hist', status: 'CANCELED' });
    const [canceled] = (await gql(allotment, STATUS_FIELDS, { id: 'ctr_hist' }))._entities;
    // The status a contract is created with applies from its start; later ones from when they were set.
    expect(canceled.statusHistory.map((change: any) => change.status)).toEqual(['TRIALING', 'ACTIVE', 'CANCELED']);
    expect(canceled.statusHistory[0].at).toBe('2026-01-01T00:00:00.000Z');
    expect(new Date(canceled.statusHistory[1].at).getTime()).toBeGreaterThanOrEqual(before);
    expect(canceled).toMatchObject({ status: 'CANCELED', canceledAt: canceled.statusHistory[2].at });
    // upsertContract changing the status is recorded the same way.
    await upsertContract(allotment, {
      id: 'ctr_hist',
      accountId: 'acct_hist',
      planKey: 'growth',
      startsAt: '2026-01-01T00:00:00Z',
      status: 'ACTIVE',
    });
    const [active] = (await gql(allotment, STATUS_FIELDS, { id: 'ctr_hist' }))._entities;
    expect(active.statusHistory.map((change: any) => change.status)).toEqual(['TRIALING', 'ACTIVE', 'CANCELED', 'ACTIVE']);
    expect(active.canceledAt).toBeNull();
  });

  it('updates contracts written before plan history existed (no revision, no history)', async () => {
    await db()
      .collection('contracts')
      .insertOne({
        _id: 'ctr_legacy' as never,
        accountId: 'acct_legacy',
        planKey: 'growth',
        planVersion: 1,
        status: 'ACTIVE',
        startsAt: new Date('2026-01-01T00:00:00Z'),
        endsAt: null,
        billingAnchor: new Date('2026-01-01T00:00:00Z'),
        createdAt: new Date(),
        updatedAt: new Date(),
      });
    await gql(allotment, SET_STATUS, { contractId: 'ctr_legacy', status: 'TRIALING' });
    const { _entities } = await gql(allotment, CONTRACT, { id: 'ctr_legacy' });
    expect(_entities[0]).toMatchObject({
      status: 'TRIALING',
      planHistory: [{ planKey: 'growth', planVersion: 1, effectiveAt: '2026-01-01T00:00:00.000Z' }],
    });
  });
});

describe('contract authorization', () => {
  it('needs contracts:write, which customer tokens can never use', async () => {
    const input = { id: 'ctr_auth', accountId: 'acct_auth', planKey: 'growth', startsAt: '2026-01-01T00:00:00Z' };
    const reader = await signToken({ scope: 'entitlements:read catalog:write' });
    expect(errorCode(await allotment.graphql(UPSERT_CONTRACT, { input }, { token: reader }))).toBe('FORBIDDEN');
    const customer = await signToken({ sub: 'user', scope: 'contracts:write', account_id: 'acct_auth' });
    expect(errorCode(await allotment.graphql(UPSERT_CONTRACT, { input }, { token: customer }))).toBe('FORBIDDEN');
    expect(errorCode(await allotment.graphql(SET_STATUS, { contractId: 'ctr_st', status: 'ACTIVE' }, { token: customer }))).toBe(
      'FORBIDDEN',
    );
    expect(
      await db()
        .collection('contracts')
        .countDocuments({ _id: 'ctr_auth' as never }),
    ).toBe(0);
  });
});
