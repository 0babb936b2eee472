/**
 * Gauges (R16) under random histories and crashes: the level never exceeds capacity +
 * grace under HARD, never goes below zero, and always equals the sum of the changes
 * accepted; a crash after any write of setUsage is recovered and counts the change once.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WritePoint } from '../../src/modules/usage/faults.js';
import { errorCode } from '../support/fixtures.js';
import { startTestInstance, type TestInstance } from '../support/harness.js';
import { key, recordUsage, recordUsageOk, usedNow, type Receipt } from '../support/usage-fixtures.js';
import { defineSeats, expectGaugeConsistent, gaugeAccount, setUsage, setUsageOk } from './gauge-fixtures.js';

let one: TestInstance;
let two: TestInstance;
beforeAll(async () => {
  const env = { USAGE_LEASE_SECONDS: '1' };
  one = await startTestInstance({ env });
  two = await startTestInstance({ dbName: one.dbName, env });
  await defineSeats(one);
});
afterAll(async () => {
  await two.stop();
  await one.stop();
});

type Change = { kind: 'delta'; units: number } | { kind: 'set'; units: number };
const changeArb: fc.Arbitrary<Change> = fc.oneof(
  fc.record({ kind: fc.constant('delta' as const), units: fc.integer({ min: -4, max: 5 }).filter((units) => units !== 0) }),
  fc.record({ kind: fc.constant('set' as const), units: fc.integer({ min: 0, max: 12 }) }),
);

function send(instance: TestInstance, accountId: string, change: Change): Promise<Receipt> {
  return change.kind === 'delta'
    ? recordUsageOk(instance, { accountId, feature: 'seats', quantity: String(change.units), idempotencyKey: key() })
    : setUsageOk(instance, { accountId, feature: 'seats', value: String(change.units), idempotencyKey: key() });
}

/** HARD, 8 included + 1 grace: the level may never exceed 9. */
const CEILING = 9;

describe('property: random histories of deltas and sets on a HARD gauge', () => {
  it('decide exactly as a sequential model does', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(changeArb, { minLength: 1, maxLength: 12 }), async (changes) => {
        const { accountId } = await gaugeAccount(one, { included: '8', grace: '1', enforcement: 'HARD' });
        let level = 0;
        for (const [i, change] of changes.entries()) {
          const next = change.kind === 'delta' ? level + change.units : change.units;
          const allowed = next >= 0 && (next <= level || next <= CEILING);
          const receipt = await send(i % 2 ? two : one, accountId, change);
          expect(receipt.status, JSON.stringify(changes.slice(0, i + 1))).toBe(allowed ? 'ACCEPTED' : 'REJECTED');
          if (allowed) level = next;
        }
        expect(await usedNow(one, accountId, 'seats')).toBe(String(level));
      }),
      { numRuns: 10 },
    );
  }, 120_000);

  it('stay within capacity + grace and equal the sum of accepted changes when sent concurrently on two instances', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(changeArb, { minLength: 1, maxLength: 25 }), async (changes) => {
        const { accountId } = await gaugeAccount(one, { included: '8', grace: '1', enforcement: 'HARD' });
        const receipts = await Promise.all(changes.map((change, i) => send(i % 2 ? two : one, accountId, change)));
        const level = await expectGaugeConsistent(one.database.db, accountId);
        expect(level).toBeGreaterThanOrEqual(0n);
        expect(level).toBeLessThanOrEqual(BigInt(CEILING) * 1_000_000n);
        if (changes.every((change) => change.kind === 'delta')) {
          const accepted = changes.filter((_, i) => receipts[i]!.status === 'ACCEPTED');
          expect(level).toBe(BigInt(accepted.reduce((sum, change) => sum + change.units, 0)) * 1_000_000n);
        }
        // Every accepted change moved the level inside [0, ceiling], in the order the gauge applied them.
        const postings = await one.database.db
          .collection<any>('usage_postings')
          .find({ accountId, appliedAs: { $ne: null } })
          .toArray();
        for (const posting of postings) {
          const after = BigInt(posting.before) + BigInt(posting.inc);
          expect(after >= 0n && (after <= BigInt(CEILING) * 1_000_000n || BigInt(posting.inc) < 0n)).toBe(true);
        }
      }),
      { numRuns: 8 },
    );
  }, 120_000);
});

const WRITES: WritePoint[] = ['events.inserted', 'counter.updated', 'audit.written', 'posting.posted', 'pending.pulled'];

describe('a crash during a gauge change (R7)', () => {
  it('after any write of setUsage is recovered by a retry on the other instance, and the level is set once', async () => {
    await Promise.all(
      WRITES.map(async (point) => {
        const { accountId } = await gaugeAccount(one, { included: '10', thresholds: [50] });
        await recordUsageOk(one, { accountId, feature: 'seats', quantity: '2', idempotencyKey: key() });
        const input = { accountId, feature: 'seats', value: '6', idempotencyKey: key(point.replace('.', '_')) };
        one.services.usage.faults.arm(point, { accountId });
        const crashed = await setUsage(one, input);
        if (point !== 'pending.pulled') expect(errorCode(crashed), point).toBe('INTERNAL_SERVER_ERROR');

        // A change made meanwhile waits its turn behind nothing: the level document is free.
        const retry = await setUsageOk(two, input);
        expect(retry, point).toMatchObject({ status: 'DUPLICATE', originalStatus: 'ACCEPTED' });
        await recordUsageOk(two, { accountId, feature: 'seats', quantity: '-1', idempotencyKey: key() });
        for (let waited = 0; ; waited += 100) {
          try {
            expect(await expectGaugeConsistent(one.database.db, accountId), point).toBe(5_000_000n);
            break;
          } catch (error) {
            if (waited > 8_000) throw error;
            await new Promise((resolve) => setTimeout(resolve, 100));
          }
        }
        // Recovery adopted the crashed attempt's change (its pending entry #1) instead of applying it again.
        const event = await one.database.db.collection<any>('usage_events').findOne({ accountId, idempotencyKey: input.idempotencyKey });
        const posting = await one.database.db.collection<any>('usage_postings').findOne({ _id: event.postingId });
        if (point !== 'events.inserted') expect(posting.appliedAs, point).toBe(`${posting._id}#1`);
        const alerts = await one.database.db.collection('usage_alerts').countDocuments({ accountId });
        expect(alerts, point).toBe(1);
        const audit = await one.database.db.collection('audit_log').countDocuments({ accountId, action: 'usage.accepted' });
        expect(audit, point).toBe(2 + 1);
      }),
    );
  }, 60_000);

  it('is recovered by the sweeper without a retry, adopting the crashed attempt exactly once', async () => {
    await Promise.all(
      (['counter.updated', 'audit.written', 'posting.posted'] as const).map(async (point) => {
        const { accountId } = await gaugeAccount(one, { included: '10' });
        await recordUsageOk(two, { accountId, feature: 'seats', quantity: '3', idempotencyKey: key() });
        const input = { accountId, feature: 'seats', quantity: '-2', idempotencyKey: key(point.replace('.', '_')) };
        one.services.usage.faults.arm(point, { accountId });
        expect(errorCode(await recordUsage(one, input)), point).toBe('INTERNAL_SERVER_ERROR');
        expect(await expectGaugeConsistent(one.database.db, accountId), point).toBe(1_000_000n);
        expect(await recordUsageOk(two, input), point).toMatchObject({ status: 'DUPLICATE', originalStatus: 'ACCEPTED' });
        expect(await usedNow(two, accountId, 'seats'), point).toBe('1');
      }),
    );
  }, 60_000);
});
