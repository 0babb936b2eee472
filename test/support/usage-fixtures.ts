/**
 * Fixtures for the usage tests: metered plans and contracts created through the GraphQL
 * API (defineFeature, publishPlan, upsertContract), and the usage operations themselves.
 * Every scenario gets its own account and plan key, so tests in one file never share a
 * counter.
 */
import { randomUUID } from 'node:crypto';
import type { Db } from 'mongodb';
import { counterId } from '../../src/modules/usage/counters.js';
import { gql, publishPlan, upsertContract } from './fixtures.js';
import type { GraphQLResponse, TestInstance } from './harness.js';

export const USAGE_FEATURES = [
  { key: 'api_calls', name: 'API calls', type: 'METERED', unit: 'call' },
  { key: 'tokens', name: 'LLM tokens', type: 'METERED', unit: 'token' },
  { key: 'storage_gb_hours', name: 'Storage', type: 'METERED', unit: 'GB-hour' },
  { key: 'sso', name: 'Single sign-on', type: 'BOOLEAN' },
] as const;

const DEFINE_FEATURE = `mutation ($input: FeatureInput!) { defineFeature(input: $input) { key } }`;

export async function defineUsageFeatures(instance: TestInstance): Promise<void> {
  for (const input of USAGE_FEATURES) await gql(instance, DEFINE_FEATURE, { input });
}

export interface MeteredTerms {
  feature?: string;
  included?: string | null;
  enforcement?: 'HARD' | 'SOFT' | 'NONE';
  grace?: string;
  resetPeriod?: 'DAY' | 'WEEK' | 'MONTH' | 'YEAR' | 'NEVER';
  thresholds?: number[];
}

export interface MeteredAccount {
  accountId: string;
  contractId: string;
  planKey: string;
  feature: string;
  /** The counter of the period containing `at` (default now), for direct assertions. */
  counterIdAt(periodStart: Date): string;
}

/**
 * A fresh account on a fresh plan with one metered entitlement (plus SSO, BOOLEAN),
 * contract ACTIVE from `startsAt` (default 2026-01-01, anchor the same instant).
 */
export async function meteredAccount(
  instance: TestInstance,
  terms: MeteredTerms = {},
  contract: { status?: string; startsAt?: string; endsAt?: string | null; billingAnchor?: string } = {},
): Promise<MeteredAccount> {
  const suffix = randomUUID().replaceAll('-', '').slice(0, 10);
  const feature = terms.feature ?? 'api_calls';
  const planKey = `usage_${suffix}`;
  await publishPlan(instance, {
    key: planKey,
    name: `Usage test ${suffix}`,
    currency: 'USD',
    entitlements: [
      {
        feature,
        included: terms.included === undefined ? '100' : terms.included,
        enforcement: terms.enforcement ?? 'HARD',
        grace: terms.grace ?? '0',
        resetPeriod: terms.resetPeriod ?? 'MONTH',
        overage: { unitPrice: '0.01', per: '1' },
        ...(terms.thresholds ? { thresholds: terms.thresholds } : {}),
      },
      { feature: 'sso' },
    ],
  });
  const accountId = `acct_${suffix}`;
  const contractId = `ctr_${suffix}`;
  await upsertContract(instance, {
    id: contractId,
    accountId,
    planKey,
    startsAt: contract.startsAt ?? '2026-01-01T00:00:00Z',
    ...(contract.status ? { status: contract.status } : {}),
    ...(contract.endsAt !== undefined ? { endsAt: contract.endsAt } : {}),
    ...(contract.billingAnchor ? { billingAnchor: contract.billingAnchor } : {}),
  });
  return { accountId, contractId, planKey, feature, counterIdAt: (periodStart) => counterId(accountId, feature, periodStart) };
}

export const RECEIPT_FIELDS = 'idempotencyKey status originalStatus reason accountId feature quantity timestamp late';

export const RECORD_USAGE = `mutation ($input: UsageEventInput!) { recordUsage(input: $input) { ${RECEIPT_FIELDS} } }`;

export const RECORD_USAGE_BATCH = `mutation ($events: [UsageEventInput!]!) {
  recordUsageBatch(events: $events) { accepted duplicates rejected receipts { ${RECEIPT_FIELDS} } } }`;

export interface UsageInput {
  accountId: string;
  feature: string;
  quantity: string;
  idempotencyKey: string;
  timestamp?: string;
  properties?: Record<string, unknown>;
}

export interface Receipt {
  idempotencyKey: string;
  status: 'ACCEPTED' | 'DUPLICATE' | 'REJECTED';
  originalStatus: 'ACCEPTED' | 'REJECTED' | null;
  reason: string | null;
  accountId: string;
  feature: string;
  quantity: string;
  timestamp: string;
  late: boolean;
}

export async function recordUsage(
  instance: TestInstance,
  input: UsageInput,
  options?: { token?: string | null },
): Promise<GraphQLResponse<{ recordUsage: Receipt }>> {
  return instance.graphql<{ recordUsage: Receipt }>(RECORD_USAGE, { input }, options);
}

export async function recordUsageOk(instance: TestInstance, input: UsageInput): Promise<Receipt> {
  return (await gql<{ recordUsage: Receipt }>(instance, RECORD_USAGE, { input })).recordUsage;
}

export interface BatchResult {
  accepted: number;
  duplicates: number;
  rejected: number;
  receipts: Receipt[];
}

export async function recordBatch(
  instance: TestInstance,
  events: UsageInput[],
  options?: { token?: string | null },
): Promise<GraphQLResponse<{ recordUsageBatch: BatchResult }>> {
  return instance.graphql<{ recordUsageBatch: BatchResult }>(RECORD_USAGE_BATCH, { events }, options);
}

export const CHECK_USED = `query ($accountId: ID!, $feature: ID!, $requestedUnits: Decimal) {
  checkEntitlement(accountId: $accountId, feature: $feature, requestedUnits: $requestedUnits) { allowed reason used capacity remaining } }`;

/** `used` as checkEntitlement reports it now. */
export async function usedNow(instance: TestInstance, accountId: string, feature: string): Promise<string> {
  return (await gql(instance, CHECK_USED, { accountId, feature, requestedUnits: '0' })).checkEntitlement.used;
}

/** What the ledger holds: counter totals, stored events and postings for an account. */
export async function ledgerOf(db: Db, accountId: string) {
  const counters = await db.collection<any>('usage_counters').find({ accountId }).toArray();
  const events = await db.collection<any>('usage_events').find({ accountId }).toArray();
  const postings = await db.collection<any>('usage_postings').find({ accountId }).toArray();
  const audit = await db
    .collection<any>('audit_log')
    .find({ accountId, action: /^usage\./ })
    .toArray();
  return { counters, events, postings, audit };
}

function inFlight({ counters, postings }: Awaited<ReturnType<typeof ledgerOf>>): boolean {
  return postings.some((posting) => posting.state !== 'POSTED') || counters.some((counter) => counter.pending.length > 0);
}

/**
 * The invariant of R7, recomputed from the database alone: for every counter of the
 * account, `used` equals the sum of its accepted events, hour buckets included, and no
 * posting is left in flight.
 */
export async function expectLedgerConsistent(db: Db, accountId: string): Promise<{ used: bigint; accepted: number }> {
  // Pulling a settled entry from `pending` is housekeeping off the request path (settle.ts):
  // give it a bounded moment, so the check judges the settled ledger, not a race with it.
  let ledger = await ledgerOf(db, accountId);
  for (const deadline = Date.now() + 5_000; Date.now() < deadline && inFlight(ledger); ) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    ledger = await ledgerOf(db, accountId);
  }
  const { counters, events, postings } = ledger;
  const byPosting = new Map(postings.map((posting) => [posting._id, posting]));
  const expected = new Map<string, bigint>();
  let accepted = 0;
  for (const event of events) {
    const posting = byPosting.get(event.postingId);
    if (!posting) throw new Error(`event ${event._id} has no posting`);
    if (posting.state !== 'POSTED') throw new Error(`posting ${posting._id} is still ${posting.state}`);
    const run = posting.outcomes.find((candidate: any) => candidate.first <= event.seq && event.seq <= candidate.last);
    if (run.outcome !== 'ACCEPTED') continue;
    accepted++;
    expected.set(posting.counterId, (expected.get(posting.counterId) ?? 0n) + BigInt(event.quantity));
  }
  let used = 0n;
  for (const counter of counters) {
    const hoursTotal = Object.values(counter.hours as Record<string, bigint>).reduce((sum, value) => sum + BigInt(value), 0n);
    if (BigInt(counter.used) !== (expected.get(counter._id) ?? 0n)) {
      throw new Error(`counter ${counter._id}: used ${counter.used} but accepted events sum to ${expected.get(counter._id) ?? 0n}`);
    }
    if (hoursTotal !== BigInt(counter.used))
      throw new Error(`counter ${counter._id}: hour buckets sum to ${hoursTotal}, used is ${counter.used}`);
    if (counter.pending.length > 0)
      throw new Error(`counter ${counter._id} still has pending entries ${JSON.stringify(counter.pending.map((e: any) => e.id))}`);
    used += BigInt(counter.used);
  }
  return { used, accepted };
}

export function key(prefix = 'evt'): string {
  return `${prefix}-${randomUUID()}`;
}
