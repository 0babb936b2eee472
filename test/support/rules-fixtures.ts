/**
 * Fixtures for R19 (rate limits) and R20 (dimension rules): a fresh account on a fresh
 * plan whose metered entitlement carries a rateLimit and/or allow rules.
 */
import { randomUUID } from 'node:crypto';
import { gql, publishPlan, upsertContract } from './fixtures.js';
import type { TestInstance } from './harness.js';

export interface RuledTerms {
  included?: string | null;
  enforcement?: 'HARD' | 'SOFT' | 'NONE';
  rateLimit?: { limit: string; window: 'SECOND' | 'MINUTE' | 'HOUR' };
  allow?: Array<{ key: string; values: string[] }>;
}

export async function ruledAccount(
  instance: TestInstance,
  terms: RuledTerms,
): Promise<{ accountId: string; contractId: string; planKey: string }> {
  const suffix = randomUUID().replaceAll('-', '').slice(0, 10);
  const planKey = `rules_${suffix}`;
  await publishPlan(instance, {
    key: planKey,
    name: `Rules test ${suffix}`,
    currency: 'USD',
    entitlements: [
      {
        feature: 'api_calls',
        included: terms.included === undefined ? '1000' : terms.included,
        enforcement: terms.enforcement ?? 'HARD',
        ...(terms.rateLimit ? { rateLimit: terms.rateLimit } : {}),
        ...(terms.allow ? { allow: terms.allow } : {}),
      },
    ],
  });
  const accountId = `acct_${suffix}`;
  const contractId = `ctr_${suffix}`;
  await upsertContract(instance, { id: contractId, accountId, planKey, startsAt: '2026-01-01T00:00:00Z' });
  return { accountId, contractId, planKey };
}

export const RULED_RECEIPT = 'idempotencyKey status originalStatus reason quantity timestamp retryAfter';

export const RECORD = `mutation ($input: UsageEventInput!) { recordUsage(input: $input) { ${RULED_RECEIPT} } }`;

export const CHECK_RULED = `query ($accountId: ID!, $feature: ID!, $requestedUnits: Decimal, $properties: JSON) {
  checkEntitlement(accountId: $accountId, feature: $feature, requestedUnits: $requestedUnits, properties: $properties) {
    allowed reason used retryAfter } }`;

export async function checkRuled(instance: TestInstance, accountId: string, requestedUnits = '1', properties?: Record<string, unknown>) {
  return (await gql(instance, CHECK_RULED, { accountId, feature: 'api_calls', requestedUnits, properties })).checkEntitlement;
}

/** Sleeps until `offsetMs` into the next window of `sizeMs`. */
export async function untilNextWindow(sizeMs: number, offsetMs = 30): Promise<void> {
  const now = Date.now();
  const next = Math.floor(now / sizeMs) * sizeMs + sizeMs + offsetMs;
  await new Promise((resolve) => setTimeout(resolve, next - now));
}
