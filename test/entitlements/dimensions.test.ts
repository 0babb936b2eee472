import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAllotmentClient, EntitlementDeniedError } from '../../src/client/index.js';
import { gql, upsertContract } from '../support/fixtures.js';
import { signToken, startTestInstance, type TestInstance } from '../support/harness.js';
import { checkRuled, RECORD, ruledAccount } from '../support/rules-fixtures.js';
import { defineUsageFeatures, expectLedgerConsistent, key, ledgerOf, usedNow } from '../support/usage-fixtures.js';

let first: TestInstance;
let second: TestInstance;
beforeAll(async () => {
  first = await startTestInstance();
  second = await startTestInstance({ dbName: first.dbName });
  await defineUsageFeatures(first);
});
afterAll(async () => {
  await second.stop();
  await first.stop();
});

const REGIONS = [{ key: 'region', values: ['us', 'eu'] }];
const event = (accountId: string, properties?: Record<string, unknown>, quantity = '1') => ({
  accountId,
  feature: 'api_calls',
  quantity,
  idempotencyKey: key(),
  ...(properties ? { properties } : {}),
});
const record = async (instance: TestInstance, input: ReturnType<typeof event>) => (await gql(instance, RECORD, { input })).recordUsage;

const USAGE = `query ($id: ID!, $groupBy: String) { _entities(representations: [{ __typename: "Account", id: $id }]) {
  ... on Account { usage(feature: "api_calls", granularity: HOUR, groupBy: $groupBy) { total groups { value total points { start used } } } } } }`;
const usage = async (accountId: string, groupBy?: string) => (await gql(first, USAGE, { id: accountId, groupBy }))._entities[0].usage;

const ENTITLEMENT = `query ($id: ID!) { _entities(representations: [{ __typename: "Account", id: $id }]) {
  ... on Account { entitlement(feature: "api_calls") { rateLimit { limit window } allow { contractId rules { key values } } } } } }`;

describe('dimension rules (R20)', () => {
  it('region in ["us","eu"] allows eu, refuses apac with nothing counted, and refuses a request without the property', async () => {
    const { accountId } = await ruledAccount(first, { included: '100', allow: REGIONS });
    expect(await record(first, event(accountId, { region: 'eu' }, '3'))).toMatchObject({ status: 'ACCEPTED', reason: 'INCLUDED' });
    const before = await usage(accountId);
    expect(before.total).toBe('3');

    for (const properties of [{ region: 'apac' }, undefined, { region: 7 }, { other: 'eu' }]) {
      const receipt = await record(second, event(accountId, properties, '2'));
      expect(receipt, JSON.stringify(properties)).toMatchObject({ status: 'REJECTED', reason: 'DIMENSION_NOT_ALLOWED', retryAfter: null });
    }
    // Nothing counted: the counter, the series and the ledger agree.
    expect(await usedNow(first, accountId, 'api_calls')).toBe('3');
    expect((await usage(accountId)).total).toBe('3');
    const { counters, audit } = await ledgerOf(first.database.db, accountId);
    expect(counters.map((counter) => BigInt(counter.used))).toEqual([3_000_000n]);
    expect(audit.filter((entry) => entry.action === 'usage.rejected').map((entry) => entry.after.reason)).toEqual(
      Array(4).fill('DIMENSION_NOT_ALLOWED'),
    );
    await expectLedgerConsistent(first.database.db, accountId);
  });

  it('checks take properties: eu allowed, apac and none refused, in single and batch checks', async () => {
    const { accountId } = await ruledAccount(first, { included: '100', allow: REGIONS });
    expect(await checkRuled(first, accountId, '1', { region: 'eu' })).toMatchObject({ allowed: true, reason: 'INCLUDED' });
    expect(await checkRuled(first, accountId, '1', { region: 'apac' })).toMatchObject({ allowed: false, reason: 'DIMENSION_NOT_ALLOWED' });
    expect(await checkRuled(first, accountId, '1')).toMatchObject({ allowed: false, reason: 'DIMENSION_NOT_ALLOWED' });
    const batch = await gql(
      second,
      `query ($checks: [EntitlementCheckInput!]!) { checkEntitlements(checks: $checks) { allowed reason } }`,
      {
        checks: [
          { accountId, feature: 'api_calls', properties: { region: 'us' } },
          { accountId, feature: 'api_calls', properties: { region: 'apac' } },
          { accountId, feature: 'api_calls' },
          { accountId, feature: 'api_calls', requestedUnits: '101', properties: { region: 'eu' } },
        ],
      },
    );
    expect(batch.checkEntitlements.map((decision: any) => decision.reason)).toEqual([
      'INCLUDED',
      'DIMENSION_NOT_ALLOWED',
      'DIMENSION_NOT_ALLOWED',
      'QUOTA_EXCEEDED',
    ]);
    // A check never counts anything.
    expect(await usedNow(first, accountId, 'api_calls')).toBe('0');
  });

  it('the typed client guards with properties: the check and the recorded event both carry them', async () => {
    const { accountId } = await ruledAccount(first, { included: '100', allow: REGIONS });
    const client = createAllotmentClient({ url: first.url, token: await signToken() });
    const { receipt } = await client.guard(accountId, 'api_calls', '2', () => 'done', { properties: { region: 'eu' } });
    expect(receipt).toMatchObject({ status: 'ACCEPTED', retryAfter: null });
    const denied = await client
      .guard(accountId, 'api_calls', '2', () => 'never', { properties: { region: 'apac' } })
      .catch((error) => error);
    expect(denied).toBeInstanceOf(EntitlementDeniedError);
    expect(denied.decision).toMatchObject({ allowed: false, reason: 'DIMENSION_NOT_ALLOWED' });
    expect(await usedNow(first, accountId, 'api_calls')).toBe('2');
  });

  it('breaks Account.usage down by region from accepted events only', async () => {
    const { accountId } = await ruledAccount(first, { included: '100', enforcement: 'HARD', allow: REGIONS });
    await record(first, event(accountId, { region: 'eu' }, '3'));
    await record(second, event(accountId, { region: 'us', tier: 'x' }, '2'));
    await record(first, event(accountId, { region: 'eu' }, '1.5'));
    await record(first, event(accountId, { region: 'apac' }, '50'));
    const series = await usage(accountId, 'region');
    expect(series.total).toBe('6.5');
    expect(series.groups.map((group: any) => [group.value, group.total])).toEqual([
      ['eu', '4.5'],
      ['us', '2'],
    ]);
    const eu = series.groups[0];
    expect(eu.points.reduce((sum: number, point: any) => sum + Number(point.used), 0)).toBe(4.5);
    expect(eu.points).toHaveLength(series.groups[1].points.length);
    // Events without the key fall in the null group; no groupBy, no groups.
    const grouped = await usage(accountId, 'tier');
    expect(grouped.groups.map((group: any) => [group.value, group.total])).toEqual([
      [null, '4.5'],
      ['x', '2'],
    ]);
    expect((await usage(accountId)).groups).toBeNull();
    const bad = await first.graphql(USAGE, { id: accountId, groupBy: '$region' });
    expect(bad.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'groupBy' });
  });

  it('shows the rules on PlanEntitlement, Entitlement and overrides; a contract without rules makes the merge unrestricted', async () => {
    const { accountId, contractId, planKey } = await ruledAccount(first, {
      allow: REGIONS,
      rateLimit: { limit: '5.5', window: 'MINUTE' },
    });
    const plan = await gql(
      first,
      `query ($key: ID!) { plan(key: $key) { entitlements { rateLimit { limit window } allow { key values } } } }`,
      {
        key: planKey,
      },
    );
    expect(plan.plan.entitlements[0]).toEqual({ rateLimit: { limit: '5.5', window: 'MINUTE' }, allow: REGIONS });
    expect((await gql(first, ENTITLEMENT, { id: accountId }))._entities[0].entitlement).toEqual({
      rateLimit: { limit: '5.5', window: 'MINUTE' },
      allow: [{ contractId, rules: REGIONS }],
    });

    // An override replaces the rules for this contract (audited like any override).
    const override = await gql(
      first,
      `mutation ($id: ID!, $input: EntitlementOverrideInput!) { setEntitlementOverride(contractId: $id, input: $input) {
        overrides { feature fields rateLimit { limit window } allow { key values } } } }`,
      { id: contractId, input: { feature: 'api_calls', allow: [{ key: 'region', values: ['apac'] }], rateLimit: null } },
    );
    expect(override.setEntitlementOverride.overrides[0]).toMatchObject({
      fields: ['rateLimit', 'allow'],
      rateLimit: null,
      allow: [{ key: 'region', values: ['apac'] }],
    });
    expect(await checkRuled(first, accountId, '1', { region: 'apac' })).toMatchObject({ allowed: true });
    expect(await checkRuled(first, accountId, '1', { region: 'eu' })).toMatchObject({ reason: 'DIMENSION_NOT_ALLOWED' });
    const audit = await first.database.db.collection<any>('audit_log').findOne({ action: 'contract.override_set', targetId: contractId });
    expect(audit.after.overrides.api_calls.allow).toEqual([{ key: 'region', values: ['apac'] }]);

    // A second contract on a plan without rules: any request applies (R4 favours access).
    const open = await ruledAccount(first, { included: '1' });
    await upsertContract(first, { id: `${contractId}_open`, accountId, planKey: open.planKey, startsAt: '2026-01-01T00:00:00Z' });
    expect(await checkRuled(first, accountId, '1', { region: 'eu' })).toMatchObject({ allowed: true });
    expect((await gql(first, ENTITLEMENT, { id: accountId }))._entities[0].entitlement).toEqual({ rateLimit: null, allow: null });
  });

  it('refuses malformed rules and properties with BAD_USER_INPUT naming the field', async () => {
    const publish = (allow: unknown) =>
      first.graphql(`mutation ($input: PlanInput!) { publishPlan(input: $input) { key } }`, {
        input: { key: `bad_${Date.now()}`, name: 'Bad', currency: 'USD', entitlements: [{ feature: 'api_calls', allow }] },
      });
    for (const [allow, field] of [
      [[{ key: '', values: ['us'] }], 'entitlements[0].allow[0].key'],
      [[{ key: 'region', values: [] }], 'entitlements[0].allow[0].values'],
      [[{ key: 'region', values: ['us', 'us'] }], 'entitlements[0].allow[0].values'],
      [REGIONS.concat(REGIONS), 'entitlements[0].allow[1].key'],
      [[{ key: 'a.b', values: ['x'] }], 'entitlements[0].allow[0].key'],
      [Array.from({ length: 11 }, (_, i) => ({ key: `k${i}`, values: ['x'] })), 'entitlements[0].allow'],
    ] as const) {
      const response = await publish(allow);
      expect(response.errors?.[0]?.extensions, JSON.stringify(allow)).toMatchObject({ code: 'BAD_USER_INPUT', field });
    }
    const { accountId } = await ruledAccount(first, { allow: REGIONS });
    for (const properties of [['eu'], 'eu', { region: 1 }, { $region: 'eu' }]) {
      const response = await first.graphql(
        `query ($a: ID!, $p: JSON) { checkEntitlement(accountId: $a, feature: "api_calls", properties: $p) { allowed } }`,
        { a: accountId, p: properties },
      );
      expect(response.errors?.[0]?.extensions, JSON.stringify(properties)).toMatchObject({ code: 'BAD_USER_INPUT', field: 'properties' });
    }
  });
});
