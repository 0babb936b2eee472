import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signToken, startTestInstance, type TestInstance } from '../support/harness.js';
import { CONTRACT_FIELDS, UPSERT_CONTRACT, errorCode, gql, upsertContract } from '../support/fixtures.js';
import { contractReads, seedContractPlans } from './fixtures.js';

let allotment: TestInstance;
const { db, entitlement, contractWrites, auditEntries } = contractReads(() => allotment);

const SET_STATUS = `mutation ($contractId: ID!, $status: ContractStatus!) { setContractStatus(contractId: $contractId, status: $status) { id status } }`;
const CONTRACT = `query ($id: ID!) { _entities(representations: [{ __typename: "Contract", id: $id }]) { ... on Contract { ${CONTRACT_FIELDS} } } }`;

beforeAll(async () => {
  allotment = await startTestInstance();
  await seedContractPlans(allotment);
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
