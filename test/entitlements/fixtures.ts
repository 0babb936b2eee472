/**
 * Shared by the entitlement tests: the accounts and plans every file starts from (the
 * reference account, an add-on that merges with growth, an enterprise contract), and reads
 * of the file's test instance.
 */
import { ACCOUNT_ENTITLEMENT, CHECK, gql, insertUsage, publishPlan, seedReferenceAccount, upsertContract } from '../support/fixtures.js';
import type { TestInstance } from '../support/harness.js';

export async function seedEntitlementAccounts(allotment: TestInstance): Promise<void> {
  await seedReferenceAccount(allotment);
  // An add-on that merges with growth: SOFT, cheaper overage, extra thresholds and config.
  await publishPlan(allotment, {
    key: 'addon',
    name: 'Add-on',
    currency: 'USD',
    entitlements: [
      {
        feature: 'api_calls',
        included: '500000',
        enforcement: 'SOFT',
        grace: '5000',
        overage: { unitPrice: '0.10', per: '1000' },
        thresholds: [50],
      },
      { feature: 'bulk_export', included: null, enforcement: 'SOFT' },
      { feature: 'admin_seats', config: { seats: 5, audit_log: true } },
    ],
  });
  await upsertContract(allotment, { id: 'ctr_ent', accountId: 'acct_ent', planKey: 'enterprise', startsAt: '2026-01-01T00:00:00Z' });
}

/** Reads of the instance `current()` returns, once the test file's `beforeAll` has started it. */
export function entitlementReads(current: () => TestInstance) {
  async function entitlement(accountId: string, feature: string, at?: string, token?: string) {
    return (await gql(current(), ACCOUNT_ENTITLEMENT, { id: accountId, feature, at }, token ? { token } : undefined))._entities[0]
      .entitlement;
  }

  async function check(accountId: string, feature: string, requestedUnits?: string, at?: string) {
    return (await gql(current(), CHECK, { accountId, feature, requestedUnits, at })).checkEntitlement;
  }

  /** Counts `used` units in the account's current period, as the usage module would. */
  async function useNow(accountId: string, feature: string, used: string): Promise<void> {
    const { periodStart, periodEnd } = await entitlement(accountId, feature);
    await insertUsage(current().database.db, { accountId, feature, periodStart, periodEnd, used });
  }

  return { entitlement, check, useNow };
}
