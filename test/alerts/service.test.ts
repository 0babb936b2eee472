/**
 * The alert service at its entry points, without the usage module in between: the
 * counter-change listener (as usage and its recovery call it), `rearm` (as the grants and
 * contract paths will), racing instances on one database, and the `Account.alerts` query.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CounterChange } from '../../src/modules/alerts/index.js';
import { counterId } from '../../src/modules/usage/counters.js';
import { units } from '../../src/shared/quantity.js';
import { insertUsage } from '../support/fixtures.js';
import { signToken, startTestInstance, uniqueDbName, type TestInstance } from '../support/harness.js';
import { ACCOUNT_ALERTS } from './fixtures.js';

let a: TestInstance;
let b: TestInstance;
beforeAll(async () => {
  const dbName = uniqueDbName('alerts');
  a = await startTestInstance({ dbName });
  b = await startTestInstance({ dbName });
});
afterAll(async () => {
  await a?.stop();
  await b?.stop();
});

const PERIOD = { start: new Date('2026-03-01T00:00:00.000Z'), end: new Date('2026-04-01T00:00:00.000Z') };
let sequence = 0;

/** A counter of its own per test; changes are expressed in whole units. */
function counter(capacity: number | null = 100, thresholds = [80, 90, 100]) {
  const accountId = `acct_svc_${++sequence}`;
  const id = counterId(accountId, 'api_calls', PERIOD.start);
  return {
    accountId,
    id,
    change: (before: number, after: number, overrides: Partial<CounterChange> = {}): CounterChange => ({
      accountId,
      feature: 'api_calls',
      counterId: id,
      period: PERIOD,
      before: units(before),
      after: units(after),
      capacity: capacity === null ? null : units(capacity),
      thresholds,
      ...overrides,
    }),
  };
}

async function storedThresholds(accountId: string): Promise<Array<[number, number]>> {
  const docs = await a.database.db.collection('usage_alerts').find({ accountId }).sort({ threshold: 1, epoch: 1 }).toArray();
  return docs.map((doc) => [doc.threshold, doc.epoch]);
}

describe('evaluation at the exactly-once point', () => {
  it('stores each crossing once when two instances race on overlapping changes and replays', async () => {
    const c = counter();
    await Promise.all([
      a.services.alerts.onCounterChange(c.change(70, 85)),
      b.services.alerts.onCounterChange(c.change(85, 95)),
      // Recovery replaying both on the other instance at the same time.
      b.services.alerts.onCounterChange(c.change(70, 85)),
      a.services.alerts.onCounterChange(c.change(85, 95, { replayed: true })),
    ]);
    expect(await storedThresholds(c.accountId)).toEqual([
      [80, 0],
      [90, 0],
    ]);
  });

  it('judges a recovery replay by level, since the original `before` may be lost', async () => {
    const c = counter();
    expect((await a.services.alerts.evaluate(c.change(95, 95, { replayed: true }))).map((alert) => alert.threshold)).toEqual([80, 90]);
    expect(await a.services.alerts.evaluate(c.change(95, 95, { replayed: true }))).toEqual([]);
  });

  it('stores nothing for an unlimited capacity or a change that crosses nothing', async () => {
    const unlimited = counter(null);
    await a.services.alerts.onCounterChange(unlimited.change(0, 1_000_000));
    const calm = counter();
    await a.services.alerts.onCounterChange(calm.change(10, 79));
    expect(await storedThresholds(unlimited.accountId)).toEqual([]);
    expect(await storedThresholds(calm.accountId)).toEqual([]);
  });

  it('honours configured thresholds', async () => {
    const c = counter(100, [50, 75]);
    expect((await a.services.alerts.evaluate(c.change(0, 100))).map((alert) => alert.threshold)).toEqual([50, 75]);
  });

  it('records the figures of the crossing', async () => {
    const c = counter(400);
    const [alert] = await a.services.alerts.evaluate(c.change(300, 330));
    expect(alert).toMatchObject({
      _id: `${c.id}|80|0`,
      accountId: c.accountId,
      feature: 'api_calls',
      threshold: 80,
      epoch: 0,
      used: units(330),
      capacity: units(400),
      periodStart: PERIOD.start,
      periodEnd: PERIOD.end,
    });
  });
});

describe('rearm', () => {
  it('re-arms the thresholds a larger capacity puts usage below, so they fire again', async () => {
    const c = counter();
    await insertUsage(a.database.db, {
      accountId: c.accountId,
      feature: 'api_calls',
      periodStart: PERIOD.start.toISOString(),
      periodEnd: PERIOD.end.toISOString(),
      used: '95',
    });
    await a.services.alerts.onCounterChange(c.change(0, 95));

    // 95 of 200 is 47.5 %: 80 and 90, which fired under 100, re-arm; 100 never fired.
    expect(await a.services.alerts.rearm(c.id, units(95), units(200), [80, 90, 100])).toEqual([80, 90]);
    // Nothing fired under a smaller capacity since: a second call re-arms nothing.
    expect(await a.services.alerts.rearm(c.id, units(95), units(200), [80, 90, 100])).toEqual([]);
    await b.services.alerts.onCounterChange(c.change(95, 170, { capacity: units(200) }));
    expect(await storedThresholds(c.accountId)).toEqual([
      [80, 0],
      [80, 1],
      [90, 0],
    ]);
  });

  it('re-arms only thresholds usage is below, reading the counter for the latest usage', async () => {
    const c = counter();
    await insertUsage(a.database.db, {
      accountId: c.accountId,
      feature: 'api_calls',
      periodStart: PERIOD.start.toISOString(),
      periodEnd: PERIOD.end.toISOString(),
      used: '170',
    });
    await a.services.alerts.onCounterChange(c.change(0, 95));
    // The caller saw 95, but the counter already holds 170 (85 % of 200): only 90 re-arms.
    expect(await a.services.alerts.rearm(c.id, units(95), units(200), null)).toEqual([90]);
    expect(await a.services.alerts.rearm(c.id, units(95), null, null)).toEqual([]);
  });

  it('fires a re-armed threshold that usage already passed again by the time the epoch moved', async () => {
    const c = counter();
    await insertUsage(a.database.db, {
      accountId: c.accountId,
      feature: 'api_calls',
      periodStart: PERIOD.start.toISOString(),
      periodEnd: PERIOD.end.toISOString(),
      used: '95',
    });
    await a.services.alerts.onCounterChange(c.change(0, 95));
    // Usage lands between the re-arm's two counter reads: the service's own counter reader
    // (white box) moves the counter right after the first read.
    const collection = (a.services.alerts as any).counters.collection;
    let reads = 0;
    const original = collection.findOne.bind(collection);
    (collection as any).findOne = async (...args: any[]) => {
      const result = await original(...(args as [any]));
      if (++reads === 1) await collection.updateOne({ _id: c.id }, { $set: { used: units(180) } });
      return result;
    };
    try {
      await a.services.alerts.rearm(c.id, units(95), units(200), null);
    } finally {
      delete (collection as any).findOne;
    }
    // 180 of 200 is 90 %: 80 and 90 fire again in their new epochs.
    expect(await storedThresholds(c.accountId)).toEqual([
      [80, 0],
      [80, 1],
      [90, 0],
      [90, 1],
    ]);
  });

  it('does not fire a crossing twice when a re-evaluation without growth races it', async () => {
    const c = counter();
    await insertUsage(a.database.db, {
      accountId: c.accountId,
      feature: 'api_calls',
      periodStart: PERIOD.start.toISOString(),
      periodEnd: PERIOD.end.toISOString(),
      used: '79',
    });
    // Usage crosses 80 (and is evaluated) between the re-arm's two counter reads.
    const collection = (a.services.alerts as any).counters.collection;
    let reads = 0;
    const original = collection.findOne.bind(collection);
    (collection as any).findOne = async (...args: any[]) => {
      const result = await original(...(args as [any]));
      if (++reads === 1) {
        await collection.updateOne({ _id: c.id }, { $set: { used: units(81) } });
        await b.services.alerts.evaluate(c.change(79, 81));
      }
      return result;
    };
    try {
      await a.services.alerts.rearm(c.id, units(79), units(100), null);
    } finally {
      delete (collection as any).findOne;
    }
    expect(await storedThresholds(c.accountId)).toEqual([[80, 0]]);
  });

  it('re-arms on the spot when a crossing finds its alert stored under a smaller capacity', async () => {
    const c = counter();
    await a.services.alerts.onCounterChange(c.change(0, 85));
    // Capacity grew to 200 without anyone calling rearm; usage climbs back past 80 %.
    await Promise.all([
      a.services.alerts.onCounterChange(c.change(150, 165, { capacity: units(200) })),
      b.services.alerts.onCounterChange(c.change(150, 165, { capacity: units(200) })),
    ]);
    expect(await storedThresholds(c.accountId)).toEqual([
      [80, 0],
      [80, 1],
    ]);
  });
});

describe('Account.alerts', () => {
  it('lists alerts newest first, narrowed by feature and count', async () => {
    const c = counter();
    await a.services.alerts.onCounterChange(c.change(0, 100));
    const all = await a.graphql(ACCOUNT_ALERTS, { id: c.accountId });
    expect(all.data?._entities[0].alerts.map((alert: any) => alert.threshold)).toEqual([100, 90, 80]);
    expect(all.data?._entities[0].alerts[0]).toMatchObject({
      used: '100',
      capacity: '100',
      percentUsed: 100,
      periodEnd: PERIOD.end.toISOString(),
    });
    const two = await a.graphql(ACCOUNT_ALERTS, { id: c.accountId, first: 2 });
    expect(two.data?._entities[0].alerts).toHaveLength(2);
    const otherFeature = await a.graphql(ACCOUNT_ALERTS, { id: c.accountId, feature: 'bulk_export' });
    expect(otherFeature.data?._entities[0].alerts).toEqual([]);
  });

  it('refuses a bad page size and another account for a customer token', async () => {
    const c = counter();
    const tooMany = await a.graphql(ACCOUNT_ALERTS, { id: c.accountId, first: 500 });
    expect(tooMany.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    const customer = await signToken({ scope: 'entitlements:read', account_id: 'acct_other' });
    const forbidden = await a.graphql(ACCOUNT_ALERTS, { id: c.accountId }, { token: customer });
    expect(forbidden.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  });
});
