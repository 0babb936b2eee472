/**
 * The shared seeded fixture: a catalog, the growth and enterprise plans and contracts,
 * all created through the GraphQL API as an operator would, so every test exercises the
 * real validation and write paths. Usage that the usage module would count is inserted as
 * counter documents (`insertUsage`) until tests can drive it through recordUsage.
 */
import type { Db } from 'mongodb';
import { counterId, type CounterDoc } from '../../src/modules/usage/counters.js';
import { parseQuantity } from '../../src/shared/quantity.js';
import type { GraphQLResponse, TestInstance } from './harness.js';

/** Runs an operation that must succeed, and returns its data. */
export async function gql<T = Record<string, any>>(
  instance: TestInstance,
  query: string,
  variables: Record<string, unknown> = {},
  options?: { token?: string | null },
): Promise<T> {
  const response: GraphQLResponse<T> = await instance.graphql<T>(query, variables, options);
  if (response.errors?.length) {
    throw new Error(`GraphQL errors: ${JSON.stringify(response.errors)}\nfor ${query.slice(0, 120)}`);
  }
  return response.data as T;
}

export const DEFINE_FEATURE = `mutation ($input: FeatureInput!) { defineFeature(input: $input) { key name type unit } }`;

export const PUBLISH_PLAN = `mutation ($input: PlanInput!) {
  publishPlan(input: $input) {
    key version name currency baseFee billingPeriod publishedAt publishedBy
    entitlements { feature { key type } enabled included resetPeriod enforcement grace overage { unitPrice per rounding } thresholds config }
  } }`;

export const CONTRACT_FIELDS = `id status startsAt endsAt billingAnchor plan { key version }
  planHistory { planKey planVersion effectiveAt }`;

export const UPSERT_CONTRACT = `mutation ($input: ContractInput!) { upsertContract(input: $input) { ${CONTRACT_FIELDS} } }`;

export const ENTITLEMENT_FIELDS = `feature { key type } hasAccess enforcement included granted capacity grace used remaining
  overage percentUsed overagePrice periodStart periodEnd delinquent config resetPeriod thresholds denialReason contractIds`;

export const DECISION_FIELDS = `allowed reason accountId feature requested used capacity remaining enforcement overageUnits periodStart periodEnd delinquent`;

export const CHECK = `query ($accountId: ID!, $feature: ID!, $requestedUnits: Decimal, $at: DateTime) {
  checkEntitlement(accountId: $accountId, feature: $feature, requestedUnits: $requestedUnits, at: $at) { ${DECISION_FIELDS} } }`;

export const ACCOUNT_ENTITLEMENT = `query ($id: ID!, $feature: ID!, $at: DateTime) {
  _entities(representations: [{ __typename: "Account", id: $id }]) {
    ... on Account { entitlement(feature: $feature, at: $at) { ${ENTITLEMENT_FIELDS} } } } }`;

export const ACCOUNT_ENTITLEMENTS = `query ($id: ID!, $at: DateTime) {
  _entities(representations: [{ __typename: "Account", id: $id }]) {
    ... on Account { entitlements(at: $at) { ${ENTITLEMENT_FIELDS} } } } }`;

/** The catalog every scenario draws from. */
export const CATALOG = [
  { key: 'api_calls', name: 'API calls', type: 'METERED', unit: 'call' },
  { key: 'bulk_export', name: 'Bulk exports', type: 'METERED', unit: 'export' },
  { key: 'sso', name: 'Single sign-on', type: 'BOOLEAN' },
  { key: 'admin_seats', name: 'Admin seats', type: 'BOOLEAN' },
  { key: 'premium_analytics', name: 'Premium analytics', type: 'BOOLEAN' },
] as const;

export async function defineCatalog(instance: TestInstance): Promise<void> {
  for (const input of CATALOG) await gql(instance, DEFINE_FEATURE, { input });
}

export interface PublishedPlan {
  key: string;
  version: number;
  [field: string]: any;
}

export async function publishPlan(instance: TestInstance, input: Record<string, unknown>): Promise<PublishedPlan> {
  return (await gql<{ publishPlan: PublishedPlan }>(instance, PUBLISH_PLAN, { input })).publishPlan;
}

/**
 * Growth: 10,000,000 API calls a month with $0.20 per 1,000 overage and 100,000 calls of
 * grace under a HARD limit; 50,000 bulk exports (SOFT, $2 per 1,000, i.e. $0.002 each);
 * SSO; premium analytics listed but disabled.
 */
export const GROWTH_PLAN = {
  key: 'growth',
  name: 'Growth',
  currency: 'USD',
  baseFee: '499.00',
  entitlements: [
    {
      feature: 'api_calls',
      included: '10000000',
      resetPeriod: 'MONTH',
      enforcement: 'HARD',
      grace: '100000',
      overage: { unitPrice: '0.20', per: '1000', rounding: 'UP' },
    },
    { feature: 'bulk_export', included: '50000', enforcement: 'SOFT', overage: { unitPrice: '2', per: '1000' } },
    { feature: 'sso' },
    { feature: 'premium_analytics', enabled: false },
  ],
};

export function publishGrowthPlan(instance: TestInstance, changes: Partial<typeof GROWTH_PLAN> = {}): Promise<PublishedPlan> {
  return publishPlan(instance, { ...GROWTH_PLAN, ...changes });
}

/** Enterprise: 1,000,000 API calls, 3 admin seats as config, premium analytics, unlimited exports. */
export const ENTERPRISE_PLAN = {
  key: 'enterprise',
  name: 'Enterprise',
  currency: 'USD',
  baseFee: '2500',
  entitlements: [
    { feature: 'api_calls', included: '1000000', enforcement: 'HARD', overage: { unitPrice: '0.10', per: '1000' } },
    { feature: 'admin_seats', config: { seats: 3 } },
    { feature: 'premium_analytics' },
    { feature: 'bulk_export', included: null, enforcement: 'NONE' },
    { feature: 'sso' },
  ],
};

export function publishEnterprisePlan(instance: TestInstance): Promise<PublishedPlan> {
  return publishPlan(instance, ENTERPRISE_PLAN);
}

export interface ContractFixture {
  id: string;
  accountId: string;
  planKey: string;
  planVersion?: number;
  status?: string;
  startsAt: string;
  endsAt?: string | null;
  billingAnchor?: string;
}

export async function upsertContract(instance: TestInstance, input: ContractFixture): Promise<Record<string, any>> {
  return (await gql(instance, UPSERT_CONTRACT, { input })).upsertContract;
}

/**
 * The reference scenario: account acct_4821 on growth since 2026-01-31 (a month-end
 * anchor), catalog defined, plans published.
 */
export async function seedReferenceAccount(instance: TestInstance): Promise<void> {
  await defineCatalog(instance);
  await publishGrowthPlan(instance);
  await publishEnterprisePlan(instance);
  await upsertContract(instance, { id: 'ctr_4821', accountId: 'acct_4821', planKey: 'growth', startsAt: '2026-01-31T00:00:00Z' });
}

/**
 * Simulates counted usage: writes the counter document the usage module keeps for
 * (account, feature, period), as it would after `used` units were accepted.
 */
export async function insertUsage(
  db: Db,
  {
    accountId,
    feature,
    periodStart,
    periodEnd,
    used,
  }: { accountId: string; feature: string; periodStart: string; periodEnd: string | null; used: string },
): Promise<void> {
  const start = new Date(periodStart);
  const now = new Date();
  await db.collection<CounterDoc>('usage_counters').insertOne({
    _id: counterId(accountId, feature, start),
    accountId,
    feature,
    periodStart: start,
    periodEnd: periodEnd ? new Date(periodEnd) : null,
    used: parseQuantity(used, { field: 'used', allowZero: true }),
    hours: {},
    pending: [],
    createdAt: now,
    updatedAt: now,
  });
}

/** The error code of a failed operation, or a readable failure when it succeeded. */
export function errorCode(response: GraphQLResponse): string | undefined {
  return response.errors?.[0]?.extensions?.code;
}
