import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCode } from '../support/fixtures.js';
import { startTestInstance, type TestInstance } from '../support/harness.js';
import {
  defineUsageFeatures,
  expectLedgerConsistent,
  key,
  ledgerOf,
  meteredAccount,
  recordBatch,
  recordUsageOk,
  type UsageInput,
  usedNow,
} from '../support/usage-fixtures.js';

let app: TestInstance;
beforeAll(async () => {
  app = await startTestInstance();
  await defineUsageFeatures(app);
});
afterAll(() => app.stop());

describe('recordUsageBatch', () => {
  it('gives correct receipts for 1,000 events with 10 duplicates inside and 10 already stored', async () => {
    const { accountId } = await meteredAccount(app, { included: '1000000' });
    const event = (i: number): UsageInput => ({
      accountId,
      feature: 'api_calls',
      quantity: `${i % 7}.25`,
      idempotencyKey: `batch-${accountId}-${i}`,
    });
    // Ten events recorded earlier, one by one.
    const stored = Array.from({ length: 10 }, (_, i) => event(1_000 + i));
    for (const input of stored) await recordUsageOk(app, input);

    // 980 new events, 10 repeats of new events inside the batch, 10 of the stored ones.
    const fresh = Array.from({ length: 980 }, (_, i) => event(i));
    const events = [...fresh];
    for (let i = 0; i < 10; i++) events.splice(100 * i + 50, 0, fresh[i * 3]!);
    for (let i = 0; i < 10; i++) events.splice(100 * i + 75, 0, stored[i]!);
    expect(events).toHaveLength(1_000);

    const response = await recordBatch(app, events);
    expect(response.errors).toBeUndefined();
    const result = response.data!.recordUsageBatch;
    expect(result).toMatchObject({ accepted: 980, duplicates: 20, rejected: 0 });
    result.receipts.forEach((receipt, index) => {
      const sent = events[index]!;
      expect(receipt.idempotencyKey).toBe(sent.idempotencyKey);
      expect(receipt.quantity).toBe(sent.quantity);
      const isStored = stored.includes(sent);
      const isRepeat = !isStored && events.indexOf(sent) !== index;
      expect(receipt.status, `receipt ${index}`).toBe(isStored || isRepeat ? 'DUPLICATE' : 'ACCEPTED');
      if (receipt.status === 'DUPLICATE') expect(receipt.originalStatus).toBe('ACCEPTED');
    });

    const sum = (inputs: UsageInput[]) => inputs.reduce((total, input) => total + Number(input.quantity) * 100, 0) / 100;
    expect(await usedNow(app, accountId, 'api_calls')).toBe(String(sum(fresh) + sum(stored)));
    const { events: storedEvents, audit } = await ledgerOf(app.database.db, accountId);
    expect(storedEvents).toHaveLength(990);
    expect(audit.filter((entry) => entry.action === 'usage.duplicate')).toHaveLength(20);
    const batchEntry = audit.find((entry) => entry.action === 'usage.accepted' && entry.targetType === 'UsagePosting');
    expect(batchEntry!.after.idempotencyKeys).toHaveLength(980);
    await expectLedgerConsistent(app.database.db, accountId);
  });

  it('records events for several accounts and features in one batch, each on its own counter', async () => {
    const first = await meteredAccount(app, { included: '100' });
    const second = await meteredAccount(app, { feature: 'tokens', included: '100', enforcement: 'SOFT' });
    const events: UsageInput[] = [
      { accountId: first.accountId, feature: 'api_calls', quantity: '1', idempotencyKey: key() },
      { accountId: second.accountId, feature: 'tokens', quantity: '150', idempotencyKey: key() },
      { accountId: first.accountId, feature: 'tokens', quantity: '1', idempotencyKey: key() },
      { accountId: first.accountId, feature: 'api_calls', quantity: '2', idempotencyKey: key() },
    ];
    const result = (await recordBatch(app, events)).data!.recordUsageBatch;
    expect(result.receipts.map((receipt) => [receipt.status, receipt.reason])).toEqual([
      ['ACCEPTED', 'INCLUDED'],
      ['ACCEPTED', 'OVERAGE'],
      ['REJECTED', 'NOT_ENTITLED'],
      ['ACCEPTED', 'INCLUDED'],
    ]);
    expect(await usedNow(app, first.accountId, 'api_calls')).toBe('3');
    expect(await usedNow(app, second.accountId, 'tokens')).toBe('150');
  });

  it('refuses a batch that reuses a key with another payload before writing anything', async () => {
    const { accountId } = await meteredAccount(app);
    const idempotencyKey = key();
    const response = await recordBatch(app, [
      { accountId, feature: 'api_calls', quantity: '1', idempotencyKey },
      { accountId, feature: 'api_calls', quantity: '1', idempotencyKey: key() },
      { accountId, feature: 'api_calls', quantity: '2', idempotencyKey },
    ]);
    expect(errorCode(response)).toBe('IDEMPOTENCY_KEY_REUSED');
    expect(response.errors![0]!.message).toContain('events[2]');
    const { events, postings, counters } = await ledgerOf(app.database.db, accountId);
    expect([events.length, postings.length, counters.length]).toEqual([0, 0, 0]);
  });

  it('records the rest of a batch and names the keys that reuse a stored key with another payload', async () => {
    const { accountId } = await meteredAccount(app);
    const reused = key();
    await recordUsageOk(app, { accountId, feature: 'api_calls', quantity: '1', idempotencyKey: reused });
    const fresh = key();
    const response = await recordBatch(app, [
      { accountId, feature: 'api_calls', quantity: '5', idempotencyKey: reused },
      { accountId, feature: 'api_calls', quantity: '2', idempotencyKey: fresh },
    ]);
    expect(errorCode(response)).toBe('IDEMPOTENCY_KEY_REUSED');
    expect(response.errors![0]!.message).toContain(reused);
    // The valid event was recorded; resending it is a duplicate, never a second count.
    const resend = (await recordBatch(app, [{ accountId, feature: 'api_calls', quantity: '2', idempotencyKey: fresh }])).data!
      .recordUsageBatch;
    expect(resend.receipts[0]).toMatchObject({ status: 'DUPLICATE', originalStatus: 'ACCEPTED' });
    expect(await usedNow(app, accountId, 'api_calls')).toBe('3');
    await expectLedgerConsistent(app.database.db, accountId);
  });
});
