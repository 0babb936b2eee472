/**
 * Exactly-once through crashes (R7) for credit burns (R14): a batch of gpt_large and
 * gpt_small events is killed right after each write of the ingestion path, then retried
 * on another instance or left to the sweeper. The credit counter must end equal to the
 * credits of its accepted events, each feature's own units equal to its accepted units,
 * with nothing in flight, and the HARD credit balance never overshot.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WritePoint } from '../../src/modules/usage/faults.js';
import { UsageReads } from '../../src/modules/usage/index.js';
import { errorCode, gql } from '../support/fixtures.js';
import { startTestInstance, type TestInstance } from '../support/harness.js';
import { key, recordBatch, type UsageInput } from '../support/usage-fixtures.js';
import { aiAccount, defineAiFeatures } from './fixtures.js';

const INGESTION_WRITES: WritePoint[] = ['events.inserted', 'counter.updated', 'audit.written', 'posting.posted', 'pending.pulled'];
const PER_UNIT: Record<string, bigint> = { gpt_large: 2_500_000n, gpt_small: 100_000n };

let crashing: TestInstance;
let survivor: TestInstance;
beforeAll(async () => {
  const env = { USAGE_LEASE_SECONDS: '1' };
  crashing = await startTestInstance({ env });
  survivor = await startTestInstance({ dbName: crashing.dbName, env });
  await defineAiFeatures(crashing);
});
afterAll(async () => {
  await survivor?.stop();
  await crashing?.stop();
});

/** The credit counter and what its accepted events say it should hold, from the database alone. */
async function creditLedger(accountId: string) {
  const db = crashing.database.db;
  const counter = (await db.collection<any>('usage_counters').findOne({ accountId, feature: 'ai_credits' })) ?? { used: 0n, pending: [] };
  const postings = await db.collection<any>('usage_postings').find({ accountId }).toArray();
  const events = await db
    .collection<any>('usage_events')
    .find({ postingId: { $in: postings.map((posting) => posting._id) } })
    .toArray();
  const byPosting = new Map(postings.map((posting) => [posting._id, posting]));
  const own: Record<string, bigint> = { gpt_large: 0n, gpt_small: 0n };
  let credits = 0n;
  for (const event of events) {
    const run = byPosting.get(event.postingId)!.outcomes?.find((r: any) => r.first <= event.seq && event.seq <= r.last);
    if (run?.outcome !== 'ACCEPTED') continue;
    own[event.feature] = own[event.feature]! + BigInt(event.quantity);
    credits += (BigInt(event.quantity) * PER_UNIT[event.feature]!) / 1_000_000n;
  }
  const hours = Object.values((counter.hours ?? {}) as Record<string, bigint>).reduce((sum, value) => sum + BigInt(value), 0n);
  return {
    inFlight: postings.filter((posting) => posting.state !== 'POSTED').length + counter.pending.length,
    used: BigInt(counter.used),
    hours,
    credits,
    own,
    burns: { gpt_large: BigInt(counter.burns?.gpt_large?.used ?? 0n), gpt_small: BigInt(counter.burns?.gpt_small?.used ?? 0n) },
  };
}

async function settled(accountId: string) {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const ledger = await creditLedger(accountId);
    if (ledger.inFlight === 0) return ledger;
    if (Date.now() > deadline) throw new Error('recovery did not finish');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('a crash mid-batch of credit burns', () => {
  it.each(['retry', 'sweeper'] as const)('is recovered by the %s: credits and own units exact, the HARD balance held', async (recovery) => {
    await Promise.all(
      INGESTION_WRITES.map(async (point) => {
        const { accountId } = await aiAccount(crashing, { credits: '30' });
        // 20 gpt_large (2.5 each) and 20 gpt_small (0.1 each) alternating: 52 credits asked of 30.
        const events = Array.from(
          { length: 40 },
          (_, i): UsageInput => ({
            accountId,
            feature: i % 2 ? 'gpt_small' : 'gpt_large',
            quantity: '1',
            idempotencyKey: key(point.replace('.', '_')),
          }),
        );
        crashing.services.usage.faults.arm(point, { accountId });
        const response = await recordBatch(crashing, events);
        if (point !== 'pending.pulled') expect(errorCode(response as never), point).toBe('INTERNAL_SERVER_ERROR');
        if (recovery === 'sweeper') await settled(accountId);
        await recordBatch(survivor, events);

        const ledger = await settled(accountId);
        expect(ledger.used, point).toBe(ledger.credits);
        expect(ledger.hours, point).toBe(ledger.credits);
        expect(ledger.burns, point).toEqual(ledger.own);
        expect(ledger.used <= 30_000_000n, point).toBe(true);
        expect(ledger.used >= 27_500_000n, point).toBe(true);
      }),
    );
  });
});

describe('reconcileUsage on a credit counter', () => {
  const RECONCILE = `mutation ($accountId: ID!, $feature: ID!, $periodStart: DateTime!) {
    reconcileUsage(accountId: $accountId, feature: $feature, periodStart: $periodStart) { observed expected drift repaired acceptedEvents } }`;

  it('recomputes the credits and each feature’s own units from the events, and repairs drift', async () => {
    const { accountId } = await aiAccount(crashing, { credits: '100' });
    await recordBatch(crashing, [
      { accountId, feature: 'gpt_large', quantity: '3', idempotencyKey: key() },
      { accountId, feature: 'gpt_small', quantity: '0.000001', idempotencyKey: key() },
    ]);
    const counters = crashing.database.db.collection<any>('usage_counters');
    const counter = await counters.findOne({ accountId, feature: 'ai_credits' });
    const variables = { accountId, feature: 'ai_credits', periodStart: counter.periodStart.toISOString() };
    // 3 × 2.5 + 0.000001 × 0.1 (rounded up to 0.000001) = 7.500001 credits: no drift.
    expect((await gql(survivor, RECONCILE, variables)).reconcileUsage).toMatchObject({ expected: '7.500001', drift: '0', repaired: false });

    await counters.updateOne({ _id: counter._id }, { $inc: { used: 2_000_000n, 'burns.gpt_large.used': 1_000_000n } });
    expect((await gql(survivor, RECONCILE, variables)).reconcileUsage).toMatchObject({
      observed: '9.500001',
      expected: '7.500001',
      drift: '2',
      repaired: true,
      acceptedEvents: 2,
    });
    const repaired = await counters.findOne({ _id: counter._id });
    expect(BigInt(repaired.used)).toBe(7_500_001n);
    expect(BigInt(repaired.burns.gpt_large.used)).toBe(3_000_000n);
    expect(BigInt(repaired.burns.gpt_small.used)).toBe(1n);

    // Only the own units drifted: found and repaired too.
    await counters.updateOne({ _id: counter._id }, { $inc: { 'burns.gpt_small.used': 5n } });
    expect((await gql(survivor, RECONCILE, variables)).reconcileUsage).toMatchObject({ drift: '0', repaired: true });
    expect(BigInt((await counters.findOne({ _id: counter._id })).burns.gpt_small.used)).toBe(1n);
  });
});

describe('a void of a credit grant', () => {
  it('waits for burning usage still in flight on the credit counter, not only the credit feature’s own', async () => {
    const { accountId } = await aiAccount(crashing, { credits: '100' });
    const reads = new UsageReads(crashing.database.db);
    const later = new Date(Date.now() + 60_000);
    expect(await reads.hasUsageInFlight(accountId, 'ai_credits', later)).toBe(false);
    // A gpt_large posting left RESERVED (its writer died after the counter update).
    crashing.services.usage.faults.arm('counter.updated', { accountId });
    await recordBatch(crashing, [{ accountId, feature: 'gpt_large', quantity: '1', idempotencyKey: key() }]);
    expect(await reads.hasUsageInFlight(accountId, 'ai_credits', later)).toBe(true);
    expect(await reads.hasUsageInFlight(accountId, 'gpt_small', later)).toBe(false);
    await settled(accountId);
    expect(await reads.hasUsageInFlight(accountId, 'ai_credits', later)).toBe(false);
  });
});
