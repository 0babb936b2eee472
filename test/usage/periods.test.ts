import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { periodContaining } from '../../src/shared/periods.js';
import { counterId } from '../../src/modules/usage/counters.js';
import { gql } from '../support/fixtures.js';
import { signToken, startTestInstance, type TestInstance } from '../support/harness.js';
import { defineUsageFeatures, key, ledgerOf, meteredAccount, recordUsageOk, usedNow } from '../support/usage-fixtures.js';

let app: TestInstance;
beforeAll(async () => {
  app = await startTestInstance();
  await defineUsageFeatures(app);
});
afterAll(() => app.stop());

const ANCHOR = new Date('2025-06-01T00:00:00Z');
const DAY = 86_400_000;

const USAGE = `query ($id: ID!, $feature: ID!, $from: DateTime, $to: DateTime, $granularity: Granularity) {
  _entities(representations: [{ __typename: "Account", id: $id }]) {
    ... on Account { usage(feature: $feature, from: $from, to: $to, granularity: $granularity) { feature granularity total points { start used } } } } }`;

describe('periods and late events (R8)', () => {
  it('counts an event in the period of its timestamp', async () => {
    const { accountId } = await meteredAccount(app, { included: '100' }, { startsAt: ANCHOR.toISOString() });
    const earlier = new Date(Date.now() - 40 * DAY);
    const previous = periodContaining(ANCHOR, 'MONTH', earlier);
    const current = periodContaining(ANCHOR, 'MONTH', new Date());
    expect(previous.start.getTime()).toBeLessThan(current.start.getTime());

    await recordUsageOk(app, { accountId, feature: 'api_calls', quantity: '7', idempotencyKey: key(), timestamp: earlier.toISOString() });
    await recordUsageOk(app, { accountId, feature: 'api_calls', quantity: '2', idempotencyKey: key() });
    const { counters } = await ledgerOf(app.database.db, accountId);
    const used = Object.fromEntries(counters.map((counter) => [counter._id, counter.used]));
    expect(used).toEqual({
      [counterId(accountId, 'api_calls', previous.start)]: 7_000_000n,
      [counterId(accountId, 'api_calls', current.start)]: 2_000_000n,
    });
    // The current period's entitlement sees only its own usage.
    expect(await usedNow(app, accountId, 'api_calls')).toBe('2');
  });

  it('accepts an event up to 5 minutes ahead, in the period of its timestamp', async () => {
    const { accountId } = await meteredAccount(app, { included: '100' }, { startsAt: ANCHOR.toISOString() });
    const soon = new Date(Date.now() + 4 * 60_000).toISOString();
    expect(
      await recordUsageOk(app, { accountId, feature: 'api_calls', quantity: '1', idempotencyKey: key(), timestamp: soon }),
    ).toMatchObject({
      status: 'ACCEPTED',
      timestamp: soon,
      late: false,
    });
  });

  it('accepts and flags late an event whose period is already invoiced, and lists it for re-rating', async () => {
    const { accountId } = await meteredAccount(app, { included: '100' }, { startsAt: ANCHOR.toISOString() });
    const earlier = new Date(Date.now() - 40 * DAY);
    const previous = periodContaining(ANCHOR, 'MONTH', earlier);
    const closedCounter = counterId(accountId, 'api_calls', previous.start);
    await recordUsageOk(app, { accountId, feature: 'api_calls', quantity: '1', idempotencyKey: key(), timestamp: earlier.toISOString() });
    // Rating (issue 8) finalises a period by stamping its counter; set it directly here.
    await app.database.db.collection('usage_counters').updateOne({ _id: closedCounter as never }, { $set: { finalizedAt: new Date() } });

    expect(await app.services.usage.isPeriodFinal(closedCounter)).toBe(true);
    const late = await recordUsageOk(app, {
      accountId,
      feature: 'api_calls',
      quantity: '3',
      idempotencyKey: key(),
      timestamp: new Date(earlier.getTime() + 1_000).toISOString(),
    });
    expect(late).toMatchObject({ status: 'ACCEPTED', late: true });
    const onTime = await recordUsageOk(app, { accountId, feature: 'api_calls', quantity: '1', idempotencyKey: key() });
    expect(onTime.late).toBe(false);
    // Late usage still counts in its own period.
    const counter = await app.database.db.collection<any>('usage_counters').findOne({ _id: closedCounter });
    expect(counter!.used).toBe(4_000_000n);
    expect(await app.services.usage.lateUsage([closedCounter])).toMatchObject([{ counterId: closedCounter, units: 3_000_000n, events: 1 }]);
    // A retry of the late event keeps its flag.
    expect(
      await recordUsageOk(app, {
        accountId,
        feature: 'api_calls',
        quantity: '3',
        idempotencyKey: late.idempotencyKey,
        timestamp: late.timestamp,
      }),
    ).toMatchObject({ status: 'DUPLICATE', late: true });
  });
});

describe('Account.usage', () => {
  it('serves hourly, daily and monthly series from the counters, zeros included', async () => {
    const { accountId } = await meteredAccount(app, { included: '1000' }, { startsAt: ANCHOR.toISOString() });
    const dayStart = (offset: number) => {
      const now = new Date();
      return Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() - offset);
    };
    const at = (offsetDays: number, hour: number, minute = 0) =>
      new Date(dayStart(offsetDays) + hour * 3_600_000 + minute * 60_000).toISOString();
    const sends = [
      { timestamp: at(3, 10, 5), quantity: '1.5' },
      { timestamp: at(3, 10, 55), quantity: '0.5' },
      { timestamp: at(3, 13), quantity: '4' },
      { timestamp: at(1, 0, 30), quantity: '0.25' },
    ];
    for (const send of sends) await recordUsageOk(app, { accountId, feature: 'api_calls', idempotencyKey: key(), ...send });

    const from = new Date(dayStart(4)).toISOString();
    const to = new Date(dayStart(0)).toISOString();
    const daily = (await gql(app, USAGE, { id: accountId, feature: 'api_calls', from, to, granularity: 'DAY' }))._entities[0].usage;
    expect(daily).toMatchObject({ feature: 'api_calls', granularity: 'DAY', total: '6.25' });
    expect(daily.points.map((point: any) => point.used)).toEqual(['0', '6', '0', '0.25']);
    expect(daily.points[1].start).toBe(new Date(dayStart(3)).toISOString());

    const hourly = (await gql(app, USAGE, { id: accountId, feature: 'api_calls', from: at(3, 9), to: at(3, 14), granularity: 'HOUR' }))
      ._entities[0].usage;
    expect(hourly.points.map((point: any) => [point.start.slice(11, 13), point.used])).toEqual([
      ['09', '0'],
      ['10', '2'],
      ['11', '0'],
      ['12', '0'],
      ['13', '4'],
    ]);

    const monthly = (await gql(app, USAGE, { id: accountId, feature: 'api_calls', granularity: 'MONTH' }))._entities[0].usage;
    expect(monthly.total).toBe('6.25');
    expect(monthly.points.length).toBeGreaterThanOrEqual(12);
  });

  it('is limited to the caller’s account for customer tokens', async () => {
    const { accountId } = await meteredAccount(app);
    const token = await signToken({ scope: 'entitlements:read', account_id: 'someone_else' });
    const response = await app.graphql(USAGE, { id: accountId, feature: 'api_calls' }, { token });
    expect(response.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  });
});
