import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCode } from '../support/fixtures.js';
import { startTestInstance, type TestInstance } from '../support/harness.js';
import {
  defineUsageFeatures,
  expectLedgerConsistent,
  key,
  ledgerOf,
  meteredAccount,
  recordUsage,
  recordUsageOk,
  type Receipt,
  usedNow,
} from '../support/usage-fixtures.js';

let first: TestInstance;
let second: TestInstance;
beforeAll(async () => {
  first = await startTestInstance();
  // A second pod on the same database.
  second = await startTestInstance({ dbName: first.dbName });
  await defineUsageFeatures(first);
});
afterAll(async () => {
  await second.stop();
  await first.stop();
});

/** Runs `tasks` with at most `width` in flight. */
async function inWaves<T>(count: number, width: number, task: (index: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < count) {
        const index = next++;
        results[index] = await task(index);
      }
    }),
  );
  return results;
}

describe('idempotent ingestion (R7)', () => {
  it('counts an event sent 1,000 times once and keeps the 999 DUPLICATE receipts in the audit trail', async () => {
    const account = await meteredAccount(first, { included: '1000000' });
    const input = { accountId: account.accountId, feature: 'api_calls', quantity: '2.5', idempotencyKey: key('retry') };
    const receipts = await inWaves(1_000, 32, async (i) => recordUsageOk(i % 2 ? first : second, input));

    expect(receipts.filter((receipt) => receipt.status === 'ACCEPTED')).toHaveLength(1);
    const duplicates = receipts.filter((receipt) => receipt.status === 'DUPLICATE');
    expect(duplicates).toHaveLength(999);
    for (const duplicate of duplicates) {
      expect(duplicate).toMatchObject({
        originalStatus: 'ACCEPTED',
        reason: 'INCLUDED',
        quantity: '2.5',
        timestamp: receipts[0]!.timestamp,
      });
    }
    expect(await usedNow(first, account.accountId, 'api_calls')).toBe('2.5');

    const { events, audit } = await ledgerOf(first.database.db, account.accountId);
    expect(events).toHaveLength(1);
    expect(audit.filter((entry) => entry.action === 'usage.accepted')).toHaveLength(1);
    const kept = audit.filter((entry) => entry.action === 'usage.duplicate');
    expect(kept).toHaveLength(999);
    expect(kept[0]).toMatchObject({ targetType: 'UsageEvent', targetId: input.idempotencyKey, actor: 'test-operator' });
    expect(kept[0]!.after).toMatchObject({ status: 'DUPLICATE', originalStatus: 'ACCEPTED', quantity: '2.5' });
    await expectLedgerConsistent(first.database.db, account.accountId);
  }, 90_000); // a thousand round trips: headroom for a loaded 2-core CI box

  it('counts 50 concurrent sends of one key split across two instances once', async () => {
    const account = await meteredAccount(first, { included: '1000' });
    const input = { accountId: account.accountId, feature: 'api_calls', quantity: '3', idempotencyKey: key('race') };
    const responses = await Promise.all(Array.from({ length: 50 }, (_, i) => recordUsage(i % 2 === 0 ? first : second, input)));
    const receipts = responses.map((response) => {
      expect(response.errors).toBeUndefined();
      return response.data!.recordUsage;
    });
    expect(receipts.filter((receipt) => receipt.status === 'ACCEPTED')).toHaveLength(1);
    expect(receipts.filter((receipt) => receipt.status === 'DUPLICATE')).toHaveLength(49);
    expect(await usedNow(second, account.accountId, 'api_calls')).toBe('3');
    await expectLedgerConsistent(first.database.db, account.accountId);
  });

  it('refuses the same key with a different payload (IDEMPOTENCY_KEY_REUSED) and counts nothing more', async () => {
    const account = await meteredAccount(first, { included: '1000' });
    const base = {
      accountId: account.accountId,
      feature: 'api_calls',
      quantity: '1',
      idempotencyKey: key('reuse'),
      timestamp: new Date(Date.now() - 60_000).toISOString(),
      properties: { region: 'eu', tags: { tier: 'gold', n: 2 } },
    };
    expect((await recordUsageOk(first, base)).status).toBe('ACCEPTED');

    const variants = [
      { ...base, quantity: '1.000001' },
      { ...base, timestamp: new Date(Date.now() - 30_000).toISOString() },
      { ...base, timestamp: undefined },
      { ...base, properties: { region: 'us', tags: { tier: 'gold', n: 2 } } },
      { ...base, feature: 'tokens' },
    ];
    for (const variant of variants) {
      const response = await recordUsage(second, variant);
      expect(errorCode(response), JSON.stringify(variant)).toBe('IDEMPOTENCY_KEY_REUSED');
      expect(response.errors![0]!.message).toContain(base.idempotencyKey);
    }
    // Key order in properties is not part of the payload.
    const reordered = await recordUsageOk(first, { ...base, properties: { tags: { n: 2, tier: 'gold' }, region: 'eu' } });
    expect(reordered).toMatchObject({ status: 'DUPLICATE', originalStatus: 'ACCEPTED' });
    expect(await usedNow(first, account.accountId, 'api_calls')).toBe('1');
  });

  it('keeps a key for the whole retention period whatever the timestamp, per account', async () => {
    const account = await meteredAccount(first, { included: '1000' });
    const other = await meteredAccount(first, { included: '1000' });
    const idempotencyKey = key('long-lived');
    const weekAgo = new Date(Date.now() - 7 * 86_400_000).toISOString();
    await recordUsageOk(first, { accountId: account.accountId, feature: 'api_calls', quantity: '1', idempotencyKey, timestamp: weekAgo });

    // A retry a week later with the same payload is still a duplicate (no 24-hour window).
    const retry = await recordUsageOk(second, {
      accountId: account.accountId,
      feature: 'api_calls',
      quantity: '1',
      idempotencyKey,
      timestamp: weekAgo,
    });
    expect(retry).toMatchObject({ status: 'DUPLICATE', originalStatus: 'ACCEPTED', timestamp: weekAgo });
    const { postings } = await ledgerOf(first.database.db, account.accountId);
    const retentionMs = postings[0]!.expiresAt.getTime() - postings[0]!.receivedAt.getTime();
    expect(retentionMs).toBe(400 * 86_400_000);

    // The same key on another account is another event.
    const elsewhere: Receipt = await recordUsageOk(first, {
      accountId: other.accountId,
      feature: 'api_calls',
      quantity: '1',
      idempotencyKey,
    });
    expect(elsewhere.status).toBe('ACCEPTED');
  });
});
