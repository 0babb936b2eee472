/**
 * The AI plan of issue 15 as an operator builds it: 100,000 `ai_credits` (HARD), with
 * `gpt_large` burning 2.5 credits per unit and `gpt_small` 0.1, on a fresh account.
 */
import { randomUUID } from 'node:crypto';
import { gql, publishPlan, upsertContract } from '../support/fixtures.js';
import type { TestInstance } from '../support/harness.js';

const DEFINE_FEATURE = `mutation ($input: FeatureInput!) { defineFeature(input: $input) { key } }`;

export const CREDIT_ENTITLEMENT = `query ($id: ID!, $feature: ID!) {
  _entities(representations: [{ __typename: "Account", id: $id }]) {
    ... on Account { entitlement(feature: $feature) { feature { key } hasAccess enforcement included granted capacity used remaining creditFeature creditsPerUnit } } } }`;

export const CREDIT_CHECK = `query ($accountId: ID!, $feature: ID!, $requestedUnits: Decimal) {
  checkEntitlement(accountId: $accountId, feature: $feature, requestedUnits: $requestedUnits) { allowed reason used capacity remaining requested overageUnits } }`;

export const SET_AUTO_TOP_UP = `mutation ($input: AutoTopUpInput!) { setAutoTopUp(input: $input) { accountId feature below amount price enabled } }`;

export async function defineAiFeatures(instance: TestInstance): Promise<void> {
  for (const input of [
    { key: 'ai_credits', name: 'AI credits', type: 'METERED', unit: 'credit' },
    { key: 'gpt_large', name: 'GPT large', type: 'METERED', unit: 'request' },
    { key: 'gpt_small', name: 'GPT small', type: 'METERED', unit: 'request' },
  ]) {
    await gql(instance, DEFINE_FEATURE, { input });
  }
}

export interface AiAccount {
  accountId: string;
  contractId: string;
  planKey: string;
}

export async function aiAccount(
  instance: TestInstance,
  options: { credits?: string; enforcement?: 'HARD' | 'SOFT'; overage?: { unitPrice: string }; baseFee?: string } = {},
): Promise<AiAccount> {
  const suffix = randomUUID().replaceAll('-', '').slice(0, 10);
  const planKey = `ai_${suffix}`;
  await publishPlan(instance, {
    key: planKey,
    name: `AI ${suffix}`,
    currency: 'USD',
    ...(options.baseFee ? { baseFee: options.baseFee } : {}),
    entitlements: [
      {
        feature: 'ai_credits',
        included: options.credits ?? '100000',
        enforcement: options.enforcement ?? 'HARD',
        ...(options.overage ? { overage: options.overage } : {}),
      },
      { feature: 'gpt_large', credits: { feature: 'ai_credits', perUnit: '2.5' } },
      { feature: 'gpt_small', credits: { feature: 'ai_credits', perUnit: '0.1' } },
    ],
  });
  const accountId = `acct_${suffix}`;
  const contractId = `ctr_${suffix}`;
  await upsertContract(instance, { id: contractId, accountId, planKey, startsAt: '2026-01-01T00:00:00Z' });
  return { accountId, contractId, planKey };
}

export async function creditEntitlement(instance: TestInstance, accountId: string, feature: string) {
  return (await gql(instance, CREDIT_ENTITLEMENT, { id: accountId, feature }))._entities[0].entitlement;
}

export async function creditCounter(instance: TestInstance, accountId: string) {
  return instance.database.db.collection<any>('usage_counters').findOne({ accountId, feature: 'ai_credits' });
}
