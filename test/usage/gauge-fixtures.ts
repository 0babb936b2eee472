/**
 * Fixtures for gauge tests (R16): a GAUGE feature `seats`, an account on a fresh plan with
 * one gauge entitlement, setUsage, and the gauge's own ledger invariant.
 */
import { randomUUID } from 'node:crypto';
import type { Db } from 'mongodb';
import { gql, publishPlan, upsertContract } from '../support/fixtures.js';
import type { GraphQLResponse, TestInstance } from '../support/harness.js';
import { RECEIPT_FIELDS, type Receipt } from '../support/usage-fixtures.js';

export const SEATS = { key: 'seats', name: 'Admin seats', type: 'GAUGE', unit: 'seat' } as const;

const DEFINE_FEATURE = `mutation ($input: FeatureInput!) { defineFeature(input: $input) { key type } }`;

export async function defineSeats(instance: TestInstance): Promise<void> {
  await gql(instance, DEFINE_FEATURE, { input: SEATS });
}

export interface GaugeTerms {
  included?: string;
  enforcement?: 'HARD' | 'SOFT' | 'NONE';
  grace?: string;
  thresholds?: number[];
  unitPrice?: string;
}

/** A fresh account with a contract from 2026-01-01 (monthly periods) on a plan with one `seats` gauge. */
export async function gaugeAccount(
  instance: TestInstance,
  terms: GaugeTerms = {},
): Promise<{ accountId: string; contractId: string; planKey: string }> {
  const suffix = randomUUID().replaceAll('-', '').slice(0, 10);
  const planKey = `gauge_${suffix}`;
  await publishPlan(instance, {
    key: planKey,
    name: `Gauge test ${suffix}`,
    currency: 'USD',
    entitlements: [
      {
        feature: 'seats',
        included: terms.included ?? '25',
        enforcement: terms.enforcement ?? 'HARD',
        grace: terms.grace ?? '0',
        resetPeriod: 'MONTH',
        overage: { unitPrice: terms.unitPrice ?? '10', per: '1' },
        ...(terms.thresholds ? { thresholds: terms.thresholds } : {}),
      },
    ],
  });
  const accountId = `acct_${suffix}`;
  const contractId = `ctr_${suffix}`;
  await upsertContract(instance, { id: contractId, accountId, planKey, startsAt: '2026-01-01T00:00:00Z' });
  return { accountId, contractId, planKey };
}

export const SET_USAGE = `mutation ($input: SetUsageInput!) { setUsage(input: $input) { ${RECEIPT_FIELDS} } }`;

export interface SetUsageInput {
  accountId: string;
  feature: string;
  value: string;
  idempotencyKey: string;
  timestamp?: string;
}

export function setUsage(
  instance: TestInstance,
  input: SetUsageInput,
  options?: { token?: string | null },
): Promise<GraphQLResponse<{ setUsage: Receipt }>> {
  return instance.graphql<{ setUsage: Receipt }>(SET_USAGE, { input }, options);
}

export async function setUsageOk(instance: TestInstance, input: SetUsageInput): Promise<Receipt> {
  return (await gql<{ setUsage: Receipt }>(instance, SET_USAGE, { input })).setUsage;
}

/**
 * R7 for a gauge, from the database alone: the level document's `used` is the sum of the
 * changes its settled postings applied, its hour buckets sum to it, nothing is pending,
 * and every posting is settled. Returns the level.
 */
export async function expectGaugeConsistent(db: Db, accountId: string): Promise<bigint> {
  // Pending entries are pulled after the response (housekeeping): give them a moment.
  for (let waited = 0; ; waited += 50) {
    const level = await db.collection<any>('usage_counters').findOne({ _id: `${accountId}|seats|level` });
    const postings = await db.collection<any>('usage_postings').find({ accountId }).toArray();
    const pending = (level?.pending ?? []).map((entry: { id: string }) => entry.id);
    const reserved = postings.filter((posting) => posting.state !== 'POSTED').map((posting) => posting._id);
    if (pending.length > 0 || reserved.length > 0) {
      if (waited > 5_000) throw new Error(`still in flight: pending ${JSON.stringify(pending)}, reserved ${JSON.stringify(reserved)}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
      continue;
    }
    const applied = postings.filter((posting) => posting.appliedAs).reduce((sum, posting) => sum + BigInt(posting.inc), 0n);
    const used = BigInt(level?.used ?? 0n);
    if (used !== applied) throw new Error(`level ${used} but settled postings applied ${applied}`);
    const hours = Object.values((level?.hours ?? {}) as Record<string, bigint>).reduce((sum, value) => sum + BigInt(value), 0n);
    if (hours !== used) throw new Error(`hour buckets sum to ${hours}, level is ${used}`);
    return used;
  }
}
