/**
 * Exactly-once through crashes (R7) for pooled postings: a batch of members' usage is
 * killed right after each write of the ingestion path (an injected throw, as a SIGKILL
 * would leave it), then retried on another instance or left to the sweeper. The pool
 * counter must end equal to the sum of its accepted events, each member's share equal to
 * the sum of that member's, with nothing in flight, and the HARD pool never overshot.
 */
import type { Db } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memberKey } from '../../src/shared/counter-key.js';
import type { WritePoint } from '../../src/modules/usage/faults.js';
import { errorCode } from '../support/fixtures.js';
import { startTestInstance, type TestInstance } from '../support/harness.js';
import { defineUsageFeatures, key, recordBatch, type UsageInput } from '../support/usage-fixtures.js';
import { pool, setLimit } from './fixtures.js';

const INGESTION_WRITES: WritePoint[] = ['events.inserted', 'counter.updated', 'audit.written', 'posting.posted', 'pending.pulled'];

let crashing: TestInstance;
let survivor: TestInstance;
beforeAll(async () => {
  const env = { USAGE_LEASE_SECONDS: '1' };
  crashing = await startTestInstance({ env });
  survivor = await startTestInstance({ dbName: crashing.dbName, env });
  await defineUsageFeatures(crashing);
});
afterAll(async () => {
  await survivor?.stop();
  await crashing?.stop();
});

/** The pool's ledger, recomputed from the database alone. */
async function poolLedger(db: Db, ownerId: string, members: string[]) {
  const counter = (await db.collection<any>('usage_counters').findOne({ accountId: ownerId })) ?? { used: 0n, hours: {}, pending: [] };
  const postings = await db
    .collection<any>('usage_postings')
    .find({ accountId: { $in: members } })
    .toArray();
  const events = await db
    .collection<any>('usage_events')
    .find({ postingId: { $in: postings.map((posting) => posting._id) } })
    .toArray();
  const byPosting = new Map(postings.map((posting) => [posting._id, posting]));
  const shares = new Map<string, bigint>();
  let total = 0n;
  for (const event of events) {
    const posting = byPosting.get(event.postingId)!;
    const run = posting.outcomes?.find((candidate: any) => candidate.first <= event.seq && event.seq <= candidate.last);
    if (run?.outcome !== 'ACCEPTED') continue;
    total += BigInt(event.quantity);
    shares.set(event.accountId, (shares.get(event.accountId) ?? 0n) + BigInt(event.quantity));
  }
  const hours = Object.values(counter.hours as Record<string, bigint>).reduce((sum, value) => sum + BigInt(value), 0n);
  return {
    counter,
    inFlight: postings.filter((posting) => posting.state !== 'POSTED').length + counter.pending.length,
    total,
    hours,
    used: BigInt(counter.used),
    shares: members.map((member) => [BigInt(counter.members?.[memberKey(member)] ?? 0n), shares.get(member) ?? 0n]),
  };
}

async function settledPool(ownerId: string, members: string[]) {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const ledger = await poolLedger(crashing.database.db, ownerId, members);
    if (ledger.inFlight === 0) return ledger;
    if (Date.now() > deadline) throw new Error('recovery did not finish');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('a crash mid-batch of pooled usage', () => {
  it.each(['retry', 'sweeper'] as const)('is recovered by the %s: the pool and every share exact, the HARD pool held', async (recovery) => {
    await Promise.all(
      INGESTION_WRITES.map(async (point) => {
        const { ownerId, members } = await pool(crashing, { included: '30', members: 2 });
        const [a, b] = members as [string, string];
        await setLimit(crashing, a, 'api_calls', '12');
        // 40 events of 1 unit, alternating members: the pool (30) and a's cap (12) both bind.
        const events = Array.from(
          { length: 40 },
          (_, i): UsageInput => ({
            accountId: i % 2 ? b : a,
            feature: 'api_calls',
            quantity: '1',
            idempotencyKey: key(point.replace('.', '_')),
          }),
        );
        crashing.services.usage.faults.arm(point, { accountId: a });
        const response = await recordBatch(crashing, events);
        if (point !== 'pending.pulled') expect(errorCode(response as never), point).toBe('INTERNAL_SERVER_ERROR');

        if (recovery === 'sweeper') await settledPool(ownerId, members);
        const resend = (await recordBatch(survivor, events)).data!.recordUsageBatch;
        expect(
          resend.receipts.filter((receipt) => receipt.status === 'ACCEPTED' || receipt.originalStatus === 'ACCEPTED').length,
          point,
        ).toBe(30);

        const ledger = await settledPool(ownerId, members);
        expect([ledger.used, ledger.total, ledger.hours], point).toEqual([30_000_000n, 30_000_000n, 30_000_000n]);
        for (const [stored, expected] of ledger.shares) expect(stored, point).toBe(expected);
        expect(ledger.shares[0]![0]! <= 12_000_000n, point).toBe(true);
      }),
    );
  });
});
