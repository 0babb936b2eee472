import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestInstance, type TestInstance } from '../support/harness.js';
import { errorCode, gql, upsertContract } from '../support/fixtures.js';
import { contractReads, seedContractPlans } from './fixtures.js';

let allotment: TestInstance;
const { entitlement, contractWrites, auditEntries } = contractReads(() => allotment);

const SET_OVERRIDE = `mutation ($contractId: ID!, $input: EntitlementOverrideInput!) {
  setEntitlementOverride(contractId: $contractId, input: $input) {
    id overrides { feature fields enabled included enforcement grace overage { unitPrice per rounding } thresholds config } } }`;
const CLEAR_OVERRIDE = `mutation ($contractId: ID!, $feature: ID!) { clearEntitlementOverride(contractId: $contractId, feature: $feature) { id overrides { feature } } }`;

beforeAll(async () => {
  allotment = await startTestInstance();
  await seedContractPlans(allotment);
});
afterAll(() => allotment.stop());

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
