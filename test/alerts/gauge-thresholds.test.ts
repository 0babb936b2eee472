/**
 * Thresholds on a gauge (R16): a threshold re-arms when the level falls back below it, so
 * every upward crossing is one alert, exactly once, also when two instances race and
 * clients retry.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gql } from '../support/fixtures.js';
import { startTestInstance, type TestInstance } from '../support/harness.js';
import { key, recordUsageOk } from '../support/usage-fixtures.js';
import { defineSeats, gaugeAccount, setUsageOk } from '../usage/gauge-fixtures.js';
import { ACCOUNT_ALERTS } from './fixtures.js';

let first: TestInstance;
let second: TestInstance;
beforeAll(async () => {
  first = await startTestInstance();
  second = await startTestInstance({ dbName: first.dbName });
  await defineSeats(first);
});
afterAll(async () => {
  await second.stop();
  await first.stop();
});

const seat = (accountId: string, quantity: string) => ({ accountId, feature: 'seats', quantity, idempotencyKey: key('seat') });

async function alertThresholds(accountId: string): Promise<number[]> {
  const data = await gql(first, ACCOUNT_ALERTS, { id: accountId, feature: 'seats', first: 100 });
  return (data._entities[0].alerts as Array<{ threshold: number }>).map((alert) => alert.threshold).sort((a, b) => a - b);
}

describe('gauge thresholds (R16)', () => {
  it('fire on every upward crossing, re-arm when the level falls below them, and never twice for one crossing', async () => {
    const { accountId } = await gaugeAccount(first, { included: '10', thresholds: [80, 100] });
    await recordUsageOk(first, seat(accountId, '8'));
    expect(await alertThresholds(accountId)).toEqual([80]);
    await recordUsageOk(second, seat(accountId, '1'));
    await recordUsageOk(first, seat(accountId, '-2'));
    expect(await alertThresholds(accountId)).toEqual([80]);

    const crossing = seat(accountId, '1');
    await recordUsageOk(second, crossing);
    expect(await alertThresholds(accountId)).toEqual([80, 80]);
    expect((await recordUsageOk(first, crossing)).status).toBe('DUPLICATE');
    await recordUsageOk(first, seat(accountId, '2'));
    expect(await alertThresholds(accountId)).toEqual([80, 80, 100]);

    // setUsage down and up again is a new crossing of both.
    await setUsageOk(second, { accountId, feature: 'seats', value: '5', idempotencyKey: key() });
    await setUsageOk(first, { accountId, feature: 'seats', value: '10', idempotencyKey: key() });
    expect(await alertThresholds(accountId)).toEqual([80, 80, 80, 100, 100]);
  });

  it('stores exactly one alert per upward crossing when two instances race ups and downs', async () => {
    const { accountId } = await gaugeAccount(first, { included: '10', thresholds: [80] });
    await recordUsageOk(first, seat(accountId, '7'));
    const changes = Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? '1' : '-1'));
    await Promise.all(changes.map((quantity, i) => recordUsageOk(i % 2 ? second : first, seat(accountId, quantity))));

    // The crossings, from what the gauge applied: before < 8 <= after.
    const postings = await first.database.db
      .collection<any>('usage_postings')
      .find({ accountId, appliedAs: { $ne: null } })
      .toArray();
    const crossings = postings.filter((posting) => {
      const before = BigInt(posting.before);
      return before < 8_000_000n && before + BigInt(posting.inc) >= 8_000_000n;
    }).length;
    expect(crossings).toBeGreaterThan(0);
    expect(await alertThresholds(accountId)).toEqual(Array(crossings).fill(80));
  }, 60_000);
});
