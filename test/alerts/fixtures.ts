/**
 * Fixtures for the alert tests: a fresh account on a fresh plan with one metered feature,
 * created through the GraphQL API, and usage recorded through `recordUsage` as a product
 * service would. Every scenario has its own account, so tests never share a counter.
 */
import { randomUUID } from 'node:crypto';
import { gql, publishPlan, upsertContract } from '../support/fixtures.js';
import type { TestInstance } from '../support/harness.js';

export const FEATURE = 'api_calls';

export async function defineMeteredFeature(instance: TestInstance): Promise<void> {
  await gql(instance, `mutation ($input: FeatureInput!) { defineFeature(input: $input) { key } }`, {
    input: { key: FEATURE, name: 'API calls', type: 'METERED', unit: 'call' },
  });
}

export interface AlertingAccount {
  accountId: string;
  contractId: string;
  planKey: string;
}

/** SOFT-enforced (usage may pass 100 %), `included` units per period. */
export async function alertingAccount(
  instance: TestInstance,
  terms: { included?: string; thresholds?: number[]; resetPeriod?: 'DAY' | 'MONTH' } = {},
): Promise<AlertingAccount> {
  const suffix = randomUUID().replaceAll('-', '').slice(0, 10);
  const planKey = `alerts_${suffix}`;
  await publishPlan(instance, {
    key: planKey,
    name: `Alerts ${suffix}`,
    currency: 'USD',
    entitlements: [
      {
        feature: FEATURE,
        included: terms.included ?? '100',
        enforcement: 'SOFT',
        resetPeriod: terms.resetPeriod ?? 'MONTH',
        overage: { unitPrice: '0.01', per: '1' },
        ...(terms.thresholds ? { thresholds: terms.thresholds } : {}),
      },
    ],
  });
  const account = { accountId: `acct_${suffix}`, contractId: `ctr_${suffix}`, planKey };
  await upsertContract(instance, { id: account.contractId, accountId: account.accountId, planKey, startsAt: '2026-01-01T00:00:00Z' });
  return account;
}

/** Many accounts on one plan (one contract each), created a few at a time. */
export async function alertingAccounts(instance: TestInstance, count: number): Promise<AlertingAccount[]> {
  const [first] = [await alertingAccount(instance)];
  const accounts = [first!];
  for (let i = 1; i < count; i += 10) {
    const batch = Array.from({ length: Math.min(10, count - i) }, (_, j) => {
      const suffix = `${first!.accountId.slice(5)}_${i + j}`;
      return { accountId: `acct_${suffix}`, contractId: `ctr_${suffix}`, planKey: first!.planKey };
    });
    await Promise.all(
      batch.map((account) =>
        upsertContract(instance, {
          id: account.contractId,
          accountId: account.accountId,
          planKey: account.planKey,
          startsAt: '2026-01-01T00:00:00Z',
        }),
      ),
    );
    accounts.push(...batch);
  }
  return accounts;
}

const RECORD_USAGE = `mutation ($input: UsageEventInput!) { recordUsage(input: $input) { status } }`;
const RECORD_USAGE_BATCH = `mutation ($events: [UsageEventInput!]!) { recordUsageBatch(events: $events) { accepted } }`;

/** Records `quantity` units now (or at `timestamp`); fails the test unless accepted. */
export async function use(
  instance: TestInstance,
  account: AlertingAccount,
  quantity: string,
  options: { idempotencyKey?: string; timestamp?: string } = {},
): Promise<string> {
  const input = {
    accountId: account.accountId,
    feature: FEATURE,
    quantity,
    idempotencyKey: options.idempotencyKey ?? randomUUID(),
    ...(options.timestamp ? { timestamp: options.timestamp } : {}),
  };
  const { recordUsage } = await gql<{ recordUsage: { status: string } }>(instance, RECORD_USAGE, { input });
  return recordUsage.status;
}

export async function useBatch(instance: TestInstance, account: AlertingAccount, quantities: string[]): Promise<number> {
  const events = quantities.map((quantity) => ({ accountId: account.accountId, feature: FEATURE, quantity, idempotencyKey: randomUUID() }));
  return (await gql<{ recordUsageBatch: { accepted: number } }>(instance, RECORD_USAGE_BATCH, { events })).recordUsageBatch.accepted;
}

export const SET_INCLUDED = `mutation ($contractId: ID!, $input: EntitlementOverrideInput!) {
  setEntitlementOverride(contractId: $contractId, input: $input) { id } }`;

export const SET_STATUS = `mutation ($contractId: ID!, $status: ContractStatus!) { setContractStatus(contractId: $contractId, status: $status) { id } }`;

export const ISSUE_GRANT = `mutation ($input: IssueGrantInput!) { issueGrant(input: $input) { id amount } }`;

export const ACCOUNT_ALERTS = `query ($id: ID!, $feature: ID, $first: Int) {
  _entities(representations: [{ __typename: "Account", id: $id }]) {
    ... on Account { alerts(feature: $feature, first: $first) { id threshold used capacity percentUsed periodStart periodEnd triggeredAt } } } }`;
