/**
 * Gauges (R16) against the real wire server: seats as a HARD limit that holds under a race
 * on two instances, signed deltas and setUsage exactly once, decreases that always pass,
 * a level that carries over between periods, and the invoice billing the period's peak.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCode } from '../support/fixtures.js';
import { signToken, startTestInstance, type TestInstance } from '../support/harness.js';
import { invoicePreviewOk, table } from '../support/rating-fixtures.js';
import { CHECK_USED, key, recordBatch, recordUsage, recordUsageOk, usedNow } from '../support/usage-fixtures.js';
import { defineSeats, expectGaugeConsistent, gaugeAccount, setUsage, setUsageOk } from './gauge-fixtures.js';
import { gql } from '../support/fixtures.js';
import { afterTermsBound } from '../support/terms-cache.js';

const ENV = { RETENTION_DAYS: '3650' };
let first: TestInstance;
let second: TestInstance;
beforeAll(async () => {
  first = await startTestInstance({ env: ENV });
  second = await startTestInstance({ dbName: first.dbName, env: ENV });
  await defineSeats(first);
});
afterAll(async () => {
  await second.stop();
  await first.stop();
});

const HEAVY = 120_000;
const seat = (accountId: string, quantity: string, timestamp?: string) => ({
  accountId,
  feature: 'seats',
  quantity,
  idempotencyKey: key('seat'),
  ...(timestamp ? { timestamp } : {}),
});
const level = (accountId: string) => usedNow(first, accountId, 'seats');

describe('a HARD seat limit (R16)', () => {
  it(
    'ends at exactly 25 after 200 concurrent seat additions on two instances, and removals free seats for new additions',
    async () => {
      const { accountId } = await gaugeAccount(first, { included: '25', enforcement: 'HARD' });
      const responses = await Promise.all(Array.from({ length: 200 }, (_, i) => recordUsage(i % 2 ? second : first, seat(accountId, '1'))));
      const receipts = responses.map((response) => {
        expect(response.errors).toBeUndefined();
        return response.data!.recordUsage;
      });
      expect(receipts.filter((receipt) => receipt.status === 'ACCEPTED')).toHaveLength(25);
      const rejected = receipts.filter((receipt) => receipt.status === 'REJECTED');
      expect(rejected).toHaveLength(175);
      expect(new Set(rejected.map((receipt) => receipt.reason))).toEqual(new Set(['QUOTA_EXCEEDED']));
      expect(await level(accountId)).toBe('25');

      // Removals always pass, even at the limit, and free seats for new additions.
      const removals = await Promise.all(Array.from({ length: 5 }, (_, i) => recordUsageOk(i % 2 ? second : first, seat(accountId, '-1'))));
      expect(removals.map((receipt) => receipt.status)).toEqual(Array(5).fill('ACCEPTED'));
      expect(await level(accountId)).toBe('20');
      const again = await Promise.all(Array.from({ length: 40 }, (_, i) => recordUsageOk(i % 2 ? second : first, seat(accountId, '1'))));
      expect(again.filter((receipt) => receipt.status === 'ACCEPTED')).toHaveLength(5);
      expect(await level(accountId)).toBe('25');
      expect(await expectGaugeConsistent(first.database.db, accountId)).toBe(25_000_000n);
    },
    HEAVY,
  );

  it('is a real limit for checkEntitlement: whether requestedUnits more seats fit', async () => {
    const { accountId } = await gaugeAccount(first, { included: '3' });
    await setUsageOk(first, { accountId, feature: 'seats', value: '2', idempotencyKey: key() });
    const check = async (requestedUnits: string) =>
      (await gql(second, CHECK_USED, { accountId, feature: 'seats', requestedUnits })).checkEntitlement;
    expect(await check('1')).toMatchObject({ allowed: true, used: '2', capacity: '3', remaining: '1' });
    expect(await check('2')).toMatchObject({ allowed: false, reason: 'QUOTA_EXCEEDED' });
  });

  it('lets decreases pass, also above a lowered limit, and refuses one below zero', async () => {
    const { accountId, contractId } = await gaugeAccount(first, { included: '3', enforcement: 'HARD' });
    expect(await recordUsageOk(first, seat(accountId, '3'))).toMatchObject({ status: 'ACCEPTED', reason: 'INCLUDED' });
    expect(await recordUsageOk(first, seat(accountId, '1'))).toMatchObject({ status: 'REJECTED', reason: 'QUOTA_EXCEEDED' });
    expect(await recordUsageOk(first, seat(accountId, '-2'))).toMatchObject({ status: 'ACCEPTED', quantity: '-2' });
    expect(await recordUsageOk(first, seat(accountId, '-0.5'))).toMatchObject({ status: 'ACCEPTED' });
    const below = await recordUsageOk(second, seat(accountId, '-0.500001'));
    expect(below).toMatchObject({ status: 'REJECTED', reason: 'LEVEL_BELOW_ZERO' });
    expect(await level(accountId)).toBe('0.5');
    const set = (value: string) => setUsageOk(first, { accountId, feature: 'seats', value, idempotencyKey: key() });
    expect(await set('4')).toMatchObject({ status: 'REJECTED', reason: 'QUOTA_EXCEEDED', quantity: '4' });
    expect(await set('3')).toMatchObject({ status: 'ACCEPTED' });

    // The limit is cut below the level: lowering the level still passes, raising it does not.
    await gql(first, `mutation ($id: ID!) { setEntitlementOverride(contractId: $id, input: { feature: "seats", included: "1" }) { id } }`, {
      id: contractId,
    });
    await afterTermsBound(); // the other instance sees the new limit within the terms cache's bound
    expect(await recordUsageOk(second, seat(accountId, '-1'))).toMatchObject({ status: 'ACCEPTED', reason: 'OVERAGE' });
    expect(await set('2')).toMatchObject({ status: 'ACCEPTED' });
    expect(await recordUsageOk(first, seat(accountId, '0.5'))).toMatchObject({ status: 'REJECTED', reason: 'QUOTA_EXCEEDED' });
    expect(await set('1.5')).toMatchObject({ status: 'ACCEPTED' });
    expect(await set('0')).toMatchObject({ status: 'ACCEPTED', reason: 'INCLUDED' });
    expect(await level(accountId)).toBe('0');
    await expectGaugeConsistent(first.database.db, accountId);
  });
});

describe('batches and series', () => {
  it('applies a batch of deltas in order, and Account.usage gives the net change per bucket', async () => {
    const { accountId } = await gaugeAccount(first, { included: '5' });
    const at = (day: number) => `2026-03-0${day}T12:00:00Z`;
    const batch = await recordBatch(first, [
      seat(accountId, '3', at(1)),
      seat(accountId, '4', at(1)),
      seat(accountId, '-1', at(2)),
      seat(accountId, '2', at(2)),
    ]);
    expect(batch.errors).toBeUndefined();
    expect(batch.data!.recordUsageBatch.receipts.map((receipt) => [receipt.status, receipt.reason])).toEqual([
      ['ACCEPTED', 'INCLUDED'],
      ['REJECTED', 'QUOTA_EXCEEDED'],
      ['ACCEPTED', 'INCLUDED'],
      ['ACCEPTED', 'INCLUDED'],
    ]);
    expect(await level(accountId)).toBe('4');
    const series = await gql(
      first,
      `query ($id: ID!) { _entities(representations: [{ __typename: "Account", id: $id }]) { ... on Account {
        usage(feature: "seats", from: "2026-03-01T00:00:00Z", to: "2026-03-04T00:00:00Z", granularity: DAY) { total points { start used } } } } }`,
      { id: accountId },
    );
    expect(series._entities[0].usage).toEqual({
      total: '4',
      points: [
        { start: '2026-03-01T00:00:00.000Z', used: '3' },
        { start: '2026-03-02T00:00:00.000Z', used: '1' },
        { start: '2026-03-03T00:00:00.000Z', used: '0' },
      ],
    });
  });
});

describe('gauge changes are exactly once (R7)', () => {
  it('answers a replayed delta or setUsage with the original receipt as DUPLICATE and counts it once', async () => {
    const { accountId } = await gaugeAccount(first, { included: '25' });
    const delta = seat(accountId, '4');
    expect(await recordUsageOk(first, delta)).toMatchObject({ status: 'ACCEPTED' });
    const replays = await Promise.all([recordUsageOk(second, delta), recordUsageOk(first, delta)]);
    expect(replays.map((receipt) => receipt.status)).toEqual(['DUPLICATE', 'DUPLICATE']);
    expect(await level(accountId)).toBe('4');

    const set = { accountId, feature: 'seats', value: '10', idempotencyKey: key('set') };
    const racing = await Promise.all([setUsageOk(first, set), setUsageOk(second, set)]);
    expect(racing.map((receipt) => receipt.status).sort()).toEqual(['ACCEPTED', 'DUPLICATE']);
    await recordUsageOk(first, seat(accountId, '-3'));
    // A replayed set does not set the level again: it was counted once, as +6.
    expect(await setUsageOk(second, set)).toMatchObject({ status: 'DUPLICATE', originalStatus: 'ACCEPTED', quantity: '10' });
    expect(await level(accountId)).toBe('7');
    expect(await expectGaugeConsistent(first.database.db, accountId)).toBe(7_000_000n);
  });

  it('refuses a key reused with another value, or reused between setUsage and recordUsage, as IDEMPOTENCY_KEY_REUSED', async () => {
    const { accountId } = await gaugeAccount(first);
    const idempotencyKey = key('reuse');
    await setUsageOk(first, { accountId, feature: 'seats', value: '2', idempotencyKey });
    expect(errorCode(await setUsage(second, { accountId, feature: 'seats', value: '3', idempotencyKey }))).toBe('IDEMPOTENCY_KEY_REUSED');
    expect(errorCode(await recordUsage(second, { accountId, feature: 'seats', quantity: '2', idempotencyKey }))).toBe(
      'IDEMPOTENCY_KEY_REUSED',
    );
    expect(await level(accountId)).toBe('2');
  });
});

describe('setUsage is validated and authorised', () => {
  it('refuses bad input with BAD_USER_INPUT naming the field, before anything is written', async () => {
    const { accountId } = await gaugeAccount(first);
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ value: '-1' }, 'value'],
      [{ value: '1.0000001' }, 'value'],
      [{ feature: 'api calls' }, 'feature'],
      [{ idempotencyKey: '' }, 'idempotencyKey'],
      [{ timestamp: '2099-01-01T00:00:00Z' }, 'timestamp'],
    ];
    for (const [change, field] of cases) {
      const response = await setUsage(first, { accountId, feature: 'seats', value: '1', idempotencyKey: key(), ...change } as never);
      expect(errorCode(response), field).toBe('BAD_USER_INPUT');
      expect(response.errors![0]!.extensions?.field, JSON.stringify(change)).toBe(field);
    }
    const events = await first.database.db.collection('usage_events').countDocuments({ accountId });
    expect(events).toBe(0);
  });

  it('refuses setUsage on a METERED feature and a negative quantity on one', async () => {
    await gql(first, `mutation { defineFeature(input: { key: "api_calls", name: "API calls", type: METERED }) { key } }`);
    const { accountId } = await gaugeAccount(first);
    await gql(
      first,
      `mutation ($id: ID!) { setEntitlementOverride(contractId: $id, input: { feature: "api_calls", enabled: true, included: "10" }) { id } }`,
      {
        id: accountId.replace('acct_', 'ctr_'),
      },
    );
    const set = await setUsage(first, { accountId, feature: 'api_calls', value: '1', idempotencyKey: key() });
    expect(errorCode(set)).toBe('BAD_USER_INPUT');
    expect(set.errors![0]!.message).toContain('GAUGE');
    const negative = await recordUsage(first, { accountId, feature: 'api_calls', quantity: '-1', idempotencyKey: key() });
    expect(errorCode(negative)).toBe('BAD_USER_INPUT');
    expect(negative.errors![0]!.extensions?.field).toBe('quantity');
    expect(await first.database.db.collection('usage_events').countDocuments({ accountId })).toBe(0);
  });

  it('refuses a pooled gauge: a level is one account’s', async () => {
    const response = await first.graphql(`mutation ($input: PlanInput!) { publishPlan(input: $input) { key } }`, {
      input: {
        key: `gauge_pool_${key().slice(-8)}`.replaceAll('-', ''),
        name: 'x',
        currency: 'USD',
        entitlements: [{ feature: 'seats', included: '5', pooled: true }],
      },
    });
    expect(errorCode(response)).toBe('BAD_USER_INPUT');
    expect(response.errors![0]!.extensions?.field).toMatch(/pooled$/);
  });

  it('needs usage:write on the account, and audits the change', async () => {
    const { accountId } = await gaugeAccount(first);
    const input = { accountId, feature: 'seats', value: '1', idempotencyKey: key() };
    const readOnly = await signToken({ scope: 'entitlements:read' });
    expect(errorCode(await setUsage(first, input, { token: readOnly }))).toBe('FORBIDDEN');
    const otherCustomer = await signToken({ scope: 'usage:write', account_id: 'acct_someone_else' });
    expect(errorCode(await setUsage(first, input, { token: otherCustomer }))).toBe('FORBIDDEN');
    const customer = await signToken({ sub: 'seat-admin', scope: 'usage:write', account_id: accountId });
    expect((await setUsage(first, input, { token: customer })).data?.setUsage.status).toBe('ACCEPTED');
    const audit = await first.database.db.collection<any>('audit_log').find({ accountId, action: 'usage.accepted' }).toArray();
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ actor: 'seat-admin', targetId: input.idempotencyKey });
    expect(audit[0].after).toMatchObject({ feature: 'seats', set: true, quantity: '1', used: '1' });
  });
});

describe('the level carries over and the invoice bills the peak (R16)', () => {
  it('carries the level into the next period and bills a peak of 31 seats against 25 included as 6 seats of overage', async () => {
    const { accountId, contractId } = await gaugeAccount(first, { included: '25', enforcement: 'SOFT', unitPrice: '10' });
    const march = (day: number) => `2026-03-${String(day).padStart(2, '0')}T10:00:00Z`;
    await setUsageOk(first, { accountId, feature: 'seats', value: '20', idempotencyKey: key(), timestamp: march(2) });
    await recordUsageOk(second, seat(accountId, '11', march(10)));
    await recordUsageOk(first, seat(accountId, '-6', march(20)));
    // April: the level carried in (25) is April's until it changes.
    await recordUsageOk(first, seat(accountId, '-3', '2026-04-05T00:00:00Z'));
    expect(await level(accountId)).toBe('22');

    const marchInvoice = await invoicePreviewOk(first, contractId, '2026-03-01T00:00:00.000Z');
    expect(table(marchInvoice)).toEqual([['OVERAGE', 'seats', '6', '10.00', '60.00']]);
    expect(marchInvoice.usage[0]).toMatchObject({ used: '31', included: '25', overage: '6' });
    const april = await invoicePreviewOk(first, contractId, '2026-04-01T00:00:00.000Z');
    expect(april.usage[0]).toMatchObject({ used: '25', overage: '0' });
    // May: nothing changed, the level carried from April (22) is its peak.
    const may = await invoicePreviewOk(first, contractId, '2026-05-01T00:00:00.000Z');
    expect(may.usage[0]).toMatchObject({ used: '22', overage: '0' });
    await expectGaugeConsistent(first.database.db, accountId);
  });
});
