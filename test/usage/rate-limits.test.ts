import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decideWindow } from '../../src/modules/usage/rate-gate.js';
import { gql } from '../support/fixtures.js';
import { pool } from '../hierarchy/fixtures.js';
import { startTestInstance, type TestInstance } from '../support/harness.js';
import { checkRuled, RECORD, ruledAccount, untilNextWindow } from '../support/rules-fixtures.js';
import { defineUsageFeatures, expectLedgerConsistent, key, ledgerOf, recordUsageOk, usedNow } from '../support/usage-fixtures.js';

let first: TestInstance;
let second: TestInstance;
beforeAll(async () => {
  first = await startTestInstance({ env: { USAGE_LEASE_SECONDS: '1' } });
  second = await startTestInstance({ dbName: first.dbName, env: { USAGE_LEASE_SECONDS: '1' } });
  await defineUsageFeatures(first);
});
afterAll(async () => {
  await second.stop();
  await first.stop();
});

const HEAVY = 90_000;
const one = (accountId: string, quantity = '1', idempotencyKey = key()) => ({ accountId, feature: 'api_calls', quantity, idempotencyKey });
const record = async (instance: TestInstance, input: ReturnType<typeof one>) => (await gql(instance, RECORD, { input })).recordUsage;
/** HOUR-window tests need the hour not to end under them (a loaded box takes ~20 s for 100 requests). */
const clearOfHourEnd = async () => {
  if (Date.now() % 3_600_000 > 3_600_000 - 90_000) await untilNextWindow(3_600_000, 50);
};
const windowsOf = (accountId: string) => first.database.db.collection<any>('usage_rate_windows').find({ accountId }).toArray();

describe('rate limits (R19)', () => {
  it(
    'a 10-per-second limit under 100 concurrent requests across two instances accepts exactly 10 per window',
    async () => {
      const { accountId } = await ruledAccount(first, { rateLimit: { limit: '10', window: 'SECOND' } });
      await untilNextWindow(1_000);
      const receipts = await Promise.all(Array.from({ length: 100 }, (_, i) => record(i % 2 ? second : first, one(accountId))));
      const byWindow = new Map<number, { accepted: number; limited: number }>();
      for (const receipt of receipts) {
        const start = Math.floor(Date.parse(receipt.timestamp) / 1000) * 1000;
        const tally = byWindow.get(start) ?? { accepted: 0, limited: 0 };
        if (receipt.status === 'ACCEPTED') tally.accepted++;
        else {
          expect(receipt).toMatchObject({ status: 'REJECTED', reason: 'RATE_LIMITED' });
          // retryAfter is the end of the window that refused it.
          expect(Date.parse(receipt.retryAfter)).toBe(start + 1000);
          tally.limited++;
        }
        byWindow.set(start, tally);
      }
      for (const [, { accepted, limited }] of byWindow) {
        expect(accepted).toBeLessThanOrEqual(10);
        // A refusal means the window was full: exactly 10 there.
        if (limited > 0) expect(accepted).toBe(10);
      }
      // 100 requests land in fewer than 10 windows: some window filled up and refused.
      expect([...byWindow.values()].some((tally) => tally.limited > 0 && tally.accepted === 10)).toBe(true);
      const totalAccepted = receipts.filter((receipt) => receipt.status === 'ACCEPTED').length;
      expect(totalAccepted).toBe([...byWindow.values()].reduce((sum, tally) => sum + tally.accepted, 0));
      expect(totalAccepted).toBeLessThanOrEqual(10 * byWindow.size);
      // Nothing refused was counted.
      expect(await usedNow(first, accountId, 'api_calls')).toBe(String(totalAccepted));
      await expectLedgerConsistent(first.database.db, accountId);
    },
    HEAVY,
  );

  it(
    'a 10-per-hour limit accepts exactly 10 of 100 concurrent requests across two instances',
    async () => {
      const { accountId } = await ruledAccount(first, { rateLimit: { limit: '10', window: 'HOUR' } });
      await clearOfHourEnd();
      const receipts = await Promise.all(Array.from({ length: 100 }, (_, i) => record(i % 2 ? second : first, one(accountId))));
      expect(receipts.filter((receipt) => receipt.status === 'ACCEPTED')).toHaveLength(10);
      expect(receipts.filter((receipt) => receipt.reason === 'RATE_LIMITED')).toHaveLength(90);
      expect(await usedNow(first, accountId, 'api_calls')).toBe('10');
      const windows = await windowsOf(accountId);
      expect(windows.map((window) => BigInt(window.count))).toEqual([10_000_000n]);
    },
    HEAVY,
  );

  it('a check says whether units fit without consuming them; retryAfter is the window end', async () => {
    const { accountId } = await ruledAccount(first, { rateLimit: { limit: '3', window: 'MINUTE' } });
    if (Date.now() % 60_000 > 50_000) await untilNextWindow(60_000, 50);
    for (let i = 0; i < 5; i++) expect(await checkRuled(second, accountId, '3')).toMatchObject({ allowed: true, retryAfter: null });
    expect(await checkRuled(second, accountId, '3.000001')).toMatchObject({ allowed: false, reason: 'RATE_LIMITED' });
    expect(await windowsOf(accountId)).toHaveLength(0);
    for (let i = 0; i < 3; i++) expect(await record(i % 2 ? second : first, one(accountId))).toMatchObject({ status: 'ACCEPTED' });
    const limited = await record(first, one(accountId));
    const end = new Date(Math.floor(Date.parse(limited.timestamp) / 60_000) * 60_000 + 60_000).toISOString();
    expect(limited).toMatchObject({ status: 'REJECTED', reason: 'RATE_LIMITED', retryAfter: end });
    expect(await checkRuled(second, accountId, '1')).toEqual({ allowed: false, reason: 'RATE_LIMITED', used: '3', retryAfter: end });
    expect(await checkRuled(second, accountId, '0')).toMatchObject({ allowed: true });
    expect(await usedNow(first, accountId, 'api_calls')).toBe('3');
  });

  it('the next window accepts again', async () => {
    const { accountId } = await ruledAccount(first, { rateLimit: { limit: '1', window: 'SECOND' } });
    await untilNextWindow(1_000);
    const receipts: Array<{ reason: string | null; retryAfter: string; timestamp: string }> = [];
    // Sequential sends until one lands in a full window (the first one usually does).
    for (let i = 0; i < 10 && !receipts.some((receipt) => receipt.reason === 'RATE_LIMITED'); i++)
      receipts.push(await record(first, one(accountId)));
    const refused = receipts.find((receipt) => receipt.reason === 'RATE_LIMITED')!;
    expect(refused).toBeDefined();
    await new Promise((resolve) => setTimeout(resolve, Date.parse(refused.retryAfter) - Date.now() + 20));
    const again = await record(second, one(accountId));
    expect(again).toMatchObject({ status: 'ACCEPTED', retryAfter: null });
    expect(Date.parse(again.timestamp)).toBeGreaterThanOrEqual(Date.parse(refused.retryAfter));
    // Two windows or more now: an ended window is deleted once a new one opens 15 minutes after it ended.
    expect((await windowsOf(accountId)).length).toBeGreaterThanOrEqual(2);
  });

  it('a quota-refused event does not eat the rate window, and a batch is decided in order', async () => {
    const { accountId } = await ruledAccount(first, { included: '5', enforcement: 'HARD', rateLimit: { limit: '8', window: 'MINUTE' } });
    if (Date.now() % 60_000 > 50_000) await untilNextWindow(60_000, 50);
    for (let i = 0; i < 5; i++) expect(await record(first, one(accountId))).toMatchObject({ status: 'ACCEPTED' });
    for (let i = 0; i < 4; i++)
      expect(await record(second, one(accountId))).toMatchObject({ status: 'REJECTED', reason: 'QUOTA_EXCEEDED' });
    const [window] = await windowsOf(accountId);
    expect(BigInt(window.count)).toBe(5_000_000n);
    // 3 units left in the window: a batch of 2, 2, 1 admits 2 and 1 and limits the middle one.
    const batch = await gql(
      second,
      `mutation ($events: [UsageEventInput!]!) { recordUsageBatch(events: $events) { receipts { status reason retryAfter } } }`,
      { events: [one(accountId, '2'), one(accountId, '2'), one(accountId, '1')].map((event) => ({ ...event })) },
    );
    // The quota refuses what the window admits (5 of 5 used): both are released again.
    expect(batch.recordUsageBatch.receipts.map((receipt: any) => receipt.reason)).toEqual([
      'QUOTA_EXCEEDED',
      'RATE_LIMITED',
      'QUOTA_EXCEEDED',
    ]);
    expect(batch.recordUsageBatch.receipts[1].retryAfter).not.toBeNull();
    expect(BigInt((await windowsOf(accountId))[0].count)).toBe(5_000_000n);
    await expectLedgerConsistent(first.database.db, accountId);
  });

  it('a replay is idempotent: the same key does not consume the window twice', async () => {
    const { accountId } = await ruledAccount(first, { rateLimit: { limit: '2', window: 'HOUR' } });
    await clearOfHourEnd();
    const input = one(accountId);
    expect(await record(first, input)).toMatchObject({ status: 'ACCEPTED' });
    expect(await record(second, input)).toMatchObject({ status: 'DUPLICATE', originalStatus: 'ACCEPTED' });
    expect(await record(first, input)).toMatchObject({ status: 'DUPLICATE' });
    expect(BigInt((await windowsOf(accountId))[0].count)).toBe(1_000_000n);
    expect(await record(first, one(accountId))).toMatchObject({ status: 'ACCEPTED' });
    const hourEnd = new Date(Math.floor(Date.now() / 3_600_000) * 3_600_000 + 3_600_000).toISOString();
    expect(await checkRuled(second, accountId, '1')).toEqual({ allowed: false, reason: 'RATE_LIMITED', used: '2', retryAfter: hourEnd });
    const limited = one(accountId);
    expect(await record(first, limited)).toMatchObject({ status: 'REJECTED', reason: 'RATE_LIMITED', retryAfter: hourEnd });
    // A retried refusal keeps its receipt, with its retryAfter.
    expect(await record(second, limited)).toMatchObject({ status: 'DUPLICATE', originalStatus: 'REJECTED', reason: 'RATE_LIMITED' });
    expect((await record(second, limited)).retryAfter).not.toBeNull();
  });

  it('a crash after the window update is recovered: the window and the counter count the event once', async () => {
    const { accountId } = await ruledAccount(first, { rateLimit: { limit: '5', window: 'HOUR' } });
    await clearOfHourEnd();
    for (const point of ['rate.consumed', 'counter.updated'] as const) {
      first.services.usage.faults.arm(point, { accountId });
      const input = one(accountId, '2');
      const response = await first.graphql(RECORD, { input });
      expect(response.errors?.[0]?.message).toContain(`injected fault after ${point}`);
      // The retry waits for the lease (1 s), takes the posting over and adopts the window's entry.
      expect(await recordUsageOk(second, input)).toMatchObject({ status: 'DUPLICATE', originalStatus: 'ACCEPTED' });
    }
    const deadline = Date.now() + 5_000;
    while ((await ledgerOf(first.database.db, accountId)).counters.some((counter) => counter.pending.length > 0) && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 100));
    expect(BigInt((await windowsOf(accountId))[0].count)).toBe(4_000_000n);
    expect(await usedNow(first, accountId, 'api_calls')).toBe('4');
    expect(await record(first, one(accountId, '2'))).toMatchObject({ status: 'REJECTED', reason: 'RATE_LIMITED' });
    expect(await record(first, one(accountId, '1'))).toMatchObject({ status: 'ACCEPTED' });
    await expectLedgerConsistent(first.database.db, accountId);
  });

  it('a crash after the window update is finished by the sweeper, and a retry then gets the original receipt', async () => {
    const { accountId } = await ruledAccount(first, { included: '3', enforcement: 'HARD', rateLimit: { limit: '5', window: 'HOUR' } });
    await clearOfHourEnd();
    expect(await record(first, one(accountId, '3'))).toMatchObject({ status: 'ACCEPTED' });
    // Admitted by the window (3 + 2 <= 5), then refused by the quota: the sweeper's resume releases it.
    first.services.usage.faults.arm('rate.consumed', { accountId });
    const input = one(accountId, '2');
    expect((await first.graphql(RECORD, { input })).errors?.[0]?.message).toContain('injected fault after rate.consumed');
    const deadline = Date.now() + 8_000;
    while ((await ledgerOf(first.database.db, accountId)).postings.some((posting) => posting.state !== 'POSTED') && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await record(second, input)).toMatchObject({ status: 'DUPLICATE', originalStatus: 'REJECTED', reason: 'QUOTA_EXCEEDED' });
    expect(BigInt((await windowsOf(accountId))[0].count)).toBe(3_000_000n);
    await expectLedgerConsistent(first.database.db, accountId);
  });

  it('a pool member is held to the pool rate limit in its own window (R13)', async () => {
    const { contractId, members, ownerId } = await pool(first, { included: '100', members: 2 });
    await gql(
      first,
      `mutation ($id: ID!, $input: EntitlementOverrideInput!) { setEntitlementOverride(contractId: $id, input: $input) { id } }`,
      {
        id: contractId,
        input: { feature: 'api_calls', rateLimit: { limit: '2', window: 'HOUR' } },
      },
    );
    await clearOfHourEnd();
    const [a, b] = members as [string, string];
    for (const member of [a, a, b, b]) expect(await record(first, one(member))).toMatchObject({ status: 'ACCEPTED' });
    expect(await record(second, one(a))).toMatchObject({ status: 'REJECTED', reason: 'RATE_LIMITED' });
    expect(await checkRuled(second, b)).toMatchObject({ allowed: false, reason: 'RATE_LIMITED' });
    expect(await usedNow(first, ownerId, 'api_calls')).toBe('4');
    expect((await windowsOf(a)).map((window) => BigInt(window.count))).toEqual([2_000_000n]);
  });

  it('refuses a bad rate limit with BAD_USER_INPUT naming the field', async () => {
    const publish = (rateLimit: unknown, feature = 'api_calls') =>
      first.graphql(`mutation ($input: PlanInput!) { publishPlan(input: $input) { key } }`, {
        input: { key: `bad_${Date.now()}`, name: 'Bad', currency: 'USD', entitlements: [{ feature, rateLimit }] },
      });
    for (const [rateLimit, feature, field] of [
      [{ limit: '0', window: 'SECOND' }, 'api_calls', 'entitlements[0].rateLimit.limit'],
      [{ limit: '-1', window: 'MINUTE' }, 'api_calls', 'entitlements[0].rateLimit.limit'],
      [{ limit: '1', window: 'SECOND' }, 'sso', 'entitlements[0].rateLimit'],
    ] as const) {
      const response = await publish(rateLimit, feature);
      expect(response.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field });
    }
  });
});

describe('the window decision (property)', () => {
  it('never admits more than the limit per window, whatever the order and interleaving of requests', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 1n, max: 50_000_000n }),
        fc.array(fc.array(fc.bigInt({ min: 1n, max: 20_000_000n }), { minLength: 1, maxLength: 8 }), { maxLength: 30 }),
        (limit, requests) => {
          // Requests apply one after another, as the guarded update serialises them.
          let count = 0n;
          for (const request of requests) {
            const decision = decideWindow(
              request.map((quantity, seq) => ({ seq, quantity })),
              count,
              limit,
            );
            expect(count).toBeLessThanOrEqual(decision.guard);
            count += decision.inc;
            expect(count).toBeLessThanOrEqual(limit);
            expect(decision.admitted.length + decision.limited.length).toBe(request.length);
            // A refused member did not fit at its turn.
            for (const seq of decision.limited) expect(request[seq]!).toBeGreaterThan(0n);
          }
        },
      ),
    );
  });
});
