/**
 * Exactly-once through crashes (R7): for every database write of the ingestion path, the
 * operation is killed right after that write (an injected throw), then recovered by a
 * retry (the next touch) or by the sweeper alone, and the ledger must end with every
 * counter equal to the sum of its accepted events, no posting in flight and no pending
 * entry left. Leases last one second here so recovery is quick.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CounterDoc } from '../../src/modules/usage/counters.js';
import type { WritePoint } from '../../src/modules/usage/faults.js';
import { eventId } from '../../src/modules/usage/idempotency.js';
import type { PostingDoc, UsageEventDoc } from '../../src/modules/usage/model.js';
import { errorCode, gql } from '../support/fixtures.js';
import { signToken, startTestInstance, type TestInstance } from '../support/harness.js';
import {
  defineUsageFeatures,
  expectLedgerConsistent,
  key,
  ledgerOf,
  meteredAccount,
  recordBatch,
  recordUsage,
  recordUsageOk,
  type UsageInput,
} from '../support/usage-fixtures.js';

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
  await survivor.stop();
  await crashing.stop();
});

const compensations = () => crashing.services.usage.recoveryTotals.compensated + survivor.services.usage.recoveryTotals.compensated;

/** Points after which the crashed attempt's increment is in the counter. */
const AFTER_COUNTING: WritePoint[] = ['counter.updated', 'audit.written', 'posting.posted', 'pending.pulled'];

/**
 * Recovery must adopt the increment the crashed attempt made (its pending entry `#1`),
 * not apply the events again and leave the sweeper to undo one of the two.
 */
async function expectAdopted(accountId: string, point: WritePoint): Promise<void> {
  if (!AFTER_COUNTING.includes(point)) return;
  const { postings } = await ledgerOf(crashing.database.db, accountId);
  const counted = postings.filter((posting) => posting.appliedAs);
  expect(
    counted.map((posting) => posting.appliedAs),
    point,
  ).toEqual(counted.map((posting) => `${posting._id}#1`));
}

/** Waits until recovery has left nothing in flight for these accounts, then checks R7's invariant. */
async function settled(accountIds: string[], timeoutMs = 8_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ledgers = await Promise.all(accountIds.map((accountId) => ledgerOf(crashing.database.db, accountId)));
    const busy = ledgers.some(
      ({ postings, counters }) =>
        postings.some((posting) => posting.state !== 'POSTED') || counters.some((counter) => counter.pending.length > 0),
    );
    if (!busy) break;
    if (Date.now() > deadline) throw new Error(`recovery did not finish within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  for (const accountId of accountIds) await expectLedgerConsistent(crashing.database.db, accountId);
}

async function crash(point: WritePoint, accountId: string, send: () => Promise<{ errors?: Array<{ message: string; extensions?: any }> }>) {
  crashing.services.usage.faults.arm(point, { accountId });
  const response = await send();
  if (point === 'pending.pulled') {
    // The pull follows the response (the outcome is final by then): the client is served,
    // and the crash leaves a settled entry for the sweeper.
    expect(response.errors, point).toBeUndefined();
    return;
  }
  expect(errorCode(response as never), point).toBe('INTERNAL_SERVER_ERROR');
  expect(response.errors![0]!.message).toContain(`injected fault after ${point}`);
}

const countAudit = async (accountId: string, action: string) =>
  (await ledgerOf(crashing.database.db, accountId)).audit.filter((entry) => entry.action === action).length;

describe('a crash after any write of recordUsage', () => {
  it.each(['retry', 'sweeper'] as const)('is recovered by the %s, and the event counts once', async (recovery) => {
    await Promise.all(
      INGESTION_WRITES.map(async (point) => {
        const { accountId } = await meteredAccount(crashing, { included: '100' });
        const input: UsageInput = { accountId, feature: 'api_calls', quantity: '2.5', idempotencyKey: key(point.replace('.', '_')) };
        await crash(point, accountId, () => recordUsage(crashing, input));

        if (recovery === 'sweeper') await settled([accountId]);
        const retry = await recordUsageOk(survivor, input);
        expect(retry, point).toMatchObject({ status: 'DUPLICATE', originalStatus: 'ACCEPTED', reason: 'INCLUDED' });

        await settled([accountId]);
        const { used, accepted } = await expectLedgerConsistent(crashing.database.db, accountId);
        expect([used, accepted], point).toEqual([2_500_000n, 1]);
        expect(await countAudit(accountId, 'usage.accepted'), point).toBe(1);
        await expectAdopted(accountId, point);
      }),
    );
  });

  it('keeps a HARD limit through a crash and the adoption of the crashed attempt', async () => {
    const { accountId } = await meteredAccount(crashing, { included: '5', enforcement: 'HARD' });
    const events = Array.from({ length: 8 }, (): UsageInput => ({ accountId, feature: 'api_calls', quantity: '1', idempotencyKey: key() }));
    await crash('counter.updated', accountId, () => recordBatch(crashing, events));
    // While the batch is in flight, another request must not slip past the limit.
    expect((await recordUsageOk(survivor, { accountId, feature: 'api_calls', quantity: '1', idempotencyKey: key() })).status).toBe(
      'REJECTED',
    );
    await settled([accountId]);
    await expectAdopted(accountId, 'counter.updated');
    const resend = (await recordBatch(survivor, events)).data!.recordUsageBatch;
    expect(resend.receipts.map((receipt) => receipt.originalStatus)).toEqual([...Array(5).fill('ACCEPTED'), ...Array(3).fill('REJECTED')]);
    expect(resend.duplicates).toBe(8);
    expect((await expectLedgerConsistent(crashing.database.db, accountId)).used).toBe(5_000_000n);
  });

  it('survives a recoverer that itself dies after taking over', async () => {
    const { accountId } = await meteredAccount(crashing, { included: '100' });
    const input: UsageInput = { accountId, feature: 'api_calls', quantity: '1', idempotencyKey: key() };
    crashing.services.usage.faults.disarm();
    survivor.services.usage.faults.disarm();
    survivor.services.usage.faults.arm('posting.taken-over', { accountId });
    crashing.services.usage.faults.arm('posting.taken-over', { accountId });
    await crash('counter.updated', accountId, () => recordUsage(crashing, input));
    await settled([accountId]);
    await expectAdopted(accountId, 'counter.updated');
    expect(crashing.services.usage.faults.pending + survivor.services.usage.faults.pending).toBeLessThan(2);
    expect(await recordUsageOk(survivor, input)).toMatchObject({ status: 'DUPLICATE', originalStatus: 'ACCEPTED' });
    expect((await expectLedgerConsistent(crashing.database.db, accountId)).used).toBe(1_000_000n);
    crashing.services.usage.faults.disarm();
    survivor.services.usage.faults.disarm();
  });
});

describe('a crash after any write of recordUsageBatch', () => {
  it.each(['retry', 'sweeper'] as const)('is recovered by the %s, every event counted once', async (recovery) => {
    await Promise.all(
      INGESTION_WRITES.map(async (point) => {
        const crashed = await meteredAccount(crashing, { included: '1000' });
        const bystander = await meteredAccount(crashing, { included: '1000', enforcement: 'SOFT' });
        const events = Array.from(
          { length: 40 },
          (_, i): UsageInput => ({
            accountId: i % 3 === 0 ? bystander.accountId : crashed.accountId,
            feature: 'api_calls',
            quantity: '0.5',
            idempotencyKey: key(point.replace('.', '_')),
          }),
        );
        await crash(point, crashed.accountId, () => recordBatch(crashing, events));

        if (recovery === 'sweeper') await settled([crashed.accountId, bystander.accountId]);
        const resend = (await recordBatch(survivor, events)).data!.recordUsageBatch;
        expect(resend.accepted + resend.duplicates, point).toBe(40);
        for (const receipt of resend.receipts) {
          if (receipt.status === 'DUPLICATE') expect(receipt.originalStatus, point).toBe('ACCEPTED');
        }
        await settled([crashed.accountId, bystander.accountId]);
        const totals = await Promise.all(
          [crashed, bystander].map(({ accountId }) => expectLedgerConsistent(crashing.database.db, accountId)),
        );
        expect(
          totals.map(({ used }) => used),
          point,
        ).toEqual([13_000_000n, 7_000_000n]);
        await expectAdopted(crashed.accountId, point);
      }),
    );
  });
});

describe('stale writes and reconciliation', () => {
  it('undoes a counter write that lands after its posting was settled by another attempt', async () => {
    const { accountId } = await meteredAccount(crashing, { included: '100' });
    const receipt = await recordUsageOk(crashing, { accountId, feature: 'api_calls', quantity: '3', idempotencyKey: key() });
    const { postings, counters } = await ledgerOf(crashing.database.db, accountId);
    const hour = Object.keys(counters[0]!.hours)[0]!;
    // A worker that stalled past its lease before its counter update, waking up late.
    await crashing.database.db.collection<CounterDoc>('usage_counters').updateOne(
      { _id: counters[0]!._id },
      {
        $inc: { used: 3_000_000n, [`hours.${hour}`]: 3_000_000n },
        $push: {
          pending: {
            id: `${postings[0]!._id}#0`,
            at: new Date(Date.now() - 5_000),
            inc: 3_000_000n,
            hours: { [hour]: 3_000_000n },
            rejected: [],
          },
        },
      },
    );
    const undone = compensations();
    await settled([accountId]);
    expect(compensations()).toBeGreaterThanOrEqual(undone + 1);
    expect((await expectLedgerConsistent(crashing.database.db, accountId)).used).toBe(3_000_000n);
    expect(receipt.status).toBe('ACCEPTED');
  });

  it('re-records events whose posting was never written (the writer died between the two inserts)', async () => {
    const { accountId } = await meteredAccount(crashing, { included: '100' });
    const idempotencyKey = key('no-posting');
    const diedAt = Date.now() - 5_000; // more than a lease ago
    await crashing.database.db.collection<UsageEventDoc>('usage_events').insertOne({
      _id: eventId(accountId, idempotencyKey),
      accountId,
      idempotencyKey,
      feature: 'api_calls',
      quantity: 2_000_000n,
      timestamp: new Date(diedAt),
      clientTimestamp: true,
      properties: null,
      postingId: `${diedAt.toString(36)}-never-written:0`,
      seq: 0,
    });
    const input: UsageInput = { accountId, feature: 'api_calls', quantity: '2', idempotencyKey, timestamp: new Date(diedAt).toISOString() };
    expect(await recordUsageOk(survivor, input)).toMatchObject({ status: 'ACCEPTED' });
    expect(await recordUsageOk(crashing, input)).toMatchObject({ status: 'DUPLICATE', originalStatus: 'ACCEPTED' });
    expect((await expectLedgerConsistent(crashing.database.db, accountId)).used).toBe(2_000_000n);
  });

  it('re-records an event orphaned by a writer that stalled past its lease after inserting it', async () => {
    const { accountId } = await meteredAccount(crashing, { included: '100' });
    const idempotencyKey = key('orphan');
    const now = new Date();
    // The recoverer settled the stalled writer's posting empty; then the writer's event landed.
    await crashing.database.db.collection<PostingDoc>('usage_postings').insertOne({
      _id: `stalled-${idempotencyKey}:0`,
      accountId,
      feature: 'api_calls',
      counterId: null,
      period: null,
      refusal: null,
      state: 'POSTED',
      attempt: 2,
      lease: { owner: 'recoverer', expiresAt: now },
      actor: 'test-operator',
      requestId: null,
      receivedAt: now,
      expiresAt: new Date(now.getTime() + 400 * 86_400_000),
      appliedAs: null,
      inc: 0n,
      outcomes: [],
      postedAt: now,
    });
    await crashing.database.db.collection<UsageEventDoc>('usage_events').insertOne({
      _id: eventId(accountId, idempotencyKey),
      accountId,
      idempotencyKey,
      feature: 'api_calls',
      quantity: 1_000_000n,
      timestamp: now,
      clientTimestamp: false,
      properties: null,
      postingId: `stalled-${idempotencyKey}:0`,
      seq: 0,
    });
    const retry = await recordUsageOk(survivor, { accountId, feature: 'api_calls', quantity: '1', idempotencyKey });
    expect(retry).toMatchObject({ status: 'ACCEPTED', reason: 'INCLUDED' });
    expect(await recordUsageOk(crashing, { accountId, feature: 'api_calls', quantity: '1', idempotencyKey })).toMatchObject({
      status: 'DUPLICATE',
    });
    expect((await expectLedgerConsistent(crashing.database.db, accountId)).used).toBe(1_000_000n);
  });

  it('forgets postings and events past retention, which frees their keys', async () => {
    const { accountId } = await meteredAccount(crashing, { included: '100' });
    const input: UsageInput = { accountId, feature: 'api_calls', quantity: '1', idempotencyKey: key('old') };
    await recordUsageOk(crashing, input);
    await crashing.database.db
      .collection('usage_postings')
      .updateMany({ accountId }, { $set: { expiresAt: new Date(Date.now() - 1_000) } });
    expect(await crashing.services.usage.deleteExpired()).toBeGreaterThanOrEqual(1);
    const { events, postings } = await ledgerOf(crashing.database.db, accountId);
    expect([events.length, postings.length]).toEqual([0, 0]);
    // Counters keep their totals: retention forgets raw events, never counted usage.
    expect((await ledgerOf(crashing.database.db, accountId)).counters[0]!.used).toBe(1_000_000n);
    expect((await recordUsageOk(crashing, input)).status).toBe('ACCEPTED');
  });

  const RECONCILE = `mutation ($accountId: ID!, $feature: ID!, $periodStart: DateTime!) {
    reconcileUsage(accountId: $accountId, feature: $feature, periodStart: $periodStart) {
      counterId observed expected drift driftedHours repaired inFlight acceptedEvents } }`;

  it('recomputes a counter from its events, reports the drift and repairs it, audited', async () => {
    const { accountId } = await meteredAccount(crashing, { included: '100' });
    for (const quantity of ['1.25', '2', '0.75'])
      await recordUsageOk(crashing, { accountId, feature: 'api_calls', quantity, idempotencyKey: key() });
    const [counter] = (await ledgerOf(crashing.database.db, accountId)).counters;
    await crashing.database.db.collection<any>('usage_counters').updateOne({ _id: counter!._id }, { $inc: { used: 5_000_000n } });
    const variables = { accountId, feature: 'api_calls', periodStart: counter!.periodStart.toISOString() };

    const report = (await gql(crashing, RECONCILE, variables)).reconcileUsage;
    expect(report).toMatchObject({
      observed: '9',
      expected: '4',
      drift: '5',
      driftedHours: 0,
      repaired: true,
      inFlight: 0,
      acceptedEvents: 3,
    });
    await expectLedgerConsistent(crashing.database.db, accountId);
    const [entry] = (await ledgerOf(crashing.database.db, accountId)).audit.filter((audit) => audit.action === 'usage.reconciled');
    expect(entry).toMatchObject({
      targetType: 'UsageCounter',
      targetId: counter!._id,
      before: { used: '9' },
      after: { used: '4', drift: '5' },
    });

    expect((await gql(crashing, RECONCILE, variables)).reconcileUsage).toMatchObject({ drift: '0', repaired: false });
  });

  it('needs the usage:reconcile scope and names the known periods when none matches', async () => {
    const { accountId } = await meteredAccount(crashing, { included: '100' });
    await recordUsageOk(crashing, { accountId, feature: 'api_calls', quantity: '1', idempotencyKey: key() });
    const variables = { accountId, feature: 'api_calls', periodStart: '2020-01-01T00:00:00Z' };
    const operator = await signToken({ scope: 'usage:write entitlements:read' });
    expect(errorCode(await crashing.graphql(RECONCILE, variables, { token: operator }))).toBe('FORBIDDEN');
    const customer = await signToken({ scope: 'usage:reconcile', account_id: accountId });
    expect(errorCode(await crashing.graphql(RECONCILE, variables, { token: customer }))).toBe('FORBIDDEN');
    const tooOld = await crashing.graphql(RECONCILE, variables);
    expect(errorCode(tooOld)).toBe('BAD_USER_INPUT');
    expect(tooOld.errors![0]!.message).toContain('retention window');
    const missing = await crashing.graphql(RECONCILE, { ...variables, periodStart: new Date(Date.now() - 86_400_000).toISOString() });
    expect(errorCode(missing)).toBe('NOT_FOUND');
    expect(missing.errors![0]!.message).toContain('Recent period starts');
  });
});
