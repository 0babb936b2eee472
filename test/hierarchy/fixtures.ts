/**
 * Pools (R13) as an operator builds them: an owner on a plan whose metered entitlement is
 * `pooled: true`, and member accounts without contracts placed under it.
 */
import { randomUUID } from 'node:crypto';
import { gql, publishPlan } from '../support/fixtures.js';
import type { TestInstance } from '../support/harness.js';

export const SET_PARENT = `mutation ($accountId: ID!, $parentId: ID) {
  setAccountParent(accountId: $accountId, parentId: $parentId) { id parent { id } children { id } } }`;

export const SET_LIMIT = `mutation ($accountId: ID!, $feature: ID!, $limit: Decimal) {
  setAccountLimit(accountId: $accountId, feature: $feature, limit: $limit) { id } }`;

export const POOL_ENTITLEMENT = `query ($id: ID!, $feature: ID!) {
  _entities(representations: [{ __typename: "Account", id: $id }]) {
    ... on Account { entitlement(feature: $feature) { hasAccess used capacity remaining pooledFrom accountUsed accountLimit } } } }`;

export const ACCOUNT_TREE = `query ($id: ID!) {
  _entities(representations: [{ __typename: "Account", id: $id }]) { ... on Account { id parent { id } children { id } } } }`;

export function accountName(prefix = 'acct'): string {
  return `${prefix}_${randomUUID().replaceAll('-', '').slice(0, 10)}`;
}

export async function setParent(instance: TestInstance, accountId: string, parentId: string | null) {
  return instance.graphql(SET_PARENT, { accountId, parentId });
}

export async function setLimit(instance: TestInstance, accountId: string, feature: string, limit: string | null): Promise<void> {
  await gql(instance, SET_LIMIT, { accountId, feature, limit });
}

export interface Pool {
  ownerId: string;
  contractId: string;
  members: string[];
  feature: string;
}

/**
 * An owner whose plan pools `feature` (included units, enforcement), and `members`
 * accounts without any contract placed directly under it.
 */
export async function pool(
  instance: TestInstance,
  options: {
    included: string;
    enforcement?: 'HARD' | 'SOFT' | 'NONE';
    members?: number;
    feature?: string;
    thresholds?: number[];
    overage?: { unitPrice: string; per?: string };
  },
): Promise<Pool> {
  const suffix = randomUUID().replaceAll('-', '').slice(0, 10);
  const feature = options.feature ?? 'api_calls';
  const planKey = `pool_${suffix}`;
  await publishPlan(instance, {
    key: planKey,
    name: `Pool ${suffix}`,
    currency: 'USD',
    entitlements: [
      {
        feature,
        included: options.included,
        enforcement: options.enforcement ?? 'HARD',
        pooled: true,
        ...(options.overage ? { overage: options.overage } : {}),
        ...(options.thresholds ? { thresholds: options.thresholds } : {}),
      },
    ],
  });
  const ownerId = `owner_${suffix}`;
  const contractId = `ctr_${suffix}`;
  await gql(instance, `mutation ($input: ContractInput!) { upsertContract(input: $input) { id } }`, {
    input: { id: contractId, accountId: ownerId, planKey, startsAt: '2026-01-01T00:00:00Z' },
  });
  const members: string[] = [];
  for (let i = 0; i < (options.members ?? 0); i++) {
    const member = `member${i}_${suffix}`;
    const placed = await setParent(instance, member, ownerId);
    if (placed.errors) throw new Error(JSON.stringify(placed.errors));
    members.push(member);
  }
  return { ownerId, contractId, members, feature };
}
