/**
 * Shared by the contract tests: the catalog and plans every file starts from, and reads of
 * the file's test instance (an account's entitlement, the contract writes, audit entries).
 */
import { ACCOUNT_ENTITLEMENT, defineCatalog, gql, publishEnterprisePlan, publishGrowthPlan, publishPlan } from '../support/fixtures.js';
import type { TestInstance } from '../support/harness.js';

export async function seedContractPlans(allotment: TestInstance): Promise<void> {
  await defineCatalog(allotment);
  await publishGrowthPlan(allotment);
  await publishEnterprisePlan(allotment);
  await publishPlan(allotment, {
    key: 'euro_growth',
    name: 'Growth (EUR)',
    currency: 'EUR',
    entitlements: [{ feature: 'api_calls', included: '5000' }],
  });
}

/** Reads of the instance `current()` returns, once the test file's `beforeAll` has started it. */
export function contractReads(current: () => TestInstance) {
  const db = () => current().database.db;

  async function entitlement(accountId: string, feature: string, at?: string) {
    return (await gql(current(), ACCOUNT_ENTITLEMENT, { id: accountId, feature, at }))._entities[0].entitlement;
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

  return { db, entitlement, contractWrites, auditEntries };
}
