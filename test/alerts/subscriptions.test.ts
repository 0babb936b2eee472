import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Client } from 'graphql-ws';
import { gql } from '../support/fixtures.js';
import { signToken, startTestInstance, type TestInstance } from '../support/harness.js';
import {
  ACCOUNT_ALERTS,
  alertingAccount,
  defineMeteredFeature,
  FEATURE,
  ISSUE_GRANT,
  SET_INCLUDED,
  SET_STATUS,
  use,
  useBatch,
} from './fixtures.js';
import { collect, liveClient, settle, USAGE_ALERTS, waitFor } from './live-client.js';

let allotment: TestInstance;
let readToken: string;
const clients: Client[] = [];

beforeAll(async () => {
  allotment = await startTestInstance();
  await defineMeteredFeature(allotment);
  readToken = await signToken({ scope: 'entitlements:read' });
});
afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.dispose()));
  await waitFor(() => allotment.services.live.hub.listenerCounts().alerts === 0, 10_000, 'listeners released');
});
afterAll(() => allotment?.stop());

const hub = () => allotment.services.live.hub;

/** Opens a subscription and waits until the server has registered it. */
async function subscribeAlerts(accountId: string, options: { token?: string; features?: string[] } = {}) {
  const client = liveClient(allotment.wsUrl, options.token ?? readToken);
  clients.push(client);
  const before = hub().listenerCounts().alerts;
  const subscription = collect<any>(client, USAGE_ALERTS, { accountId, features: options.features }, 'usageAlerts');
  await waitFor(() => hub().listenerCounts().alerts === before + 1, 10_000, 'subscription registered');
  return subscription;
}

describe('following other instances', () => {
  it('polls by default on a server that is not a replica set (the embedded stand-in)', () => {
    if (inject('mongoEngine') !== 'mongo-java-server') return;
    expect(allotment.services.live.feedModes).toEqual({ alerts: 'polling', balances: 'polling' });
  });
});

describe('usageAlerts over graphql-ws', () => {
  it('pushes 80, 90 and 100 exactly once each as usage climbs', async () => {
    const account = await alertingAccount(allotment);
    const alerts = await subscribeAlerts(account.accountId);

    await use(allotment, account, '50');
    await use(allotment, account, '30'); // 80 %
    await use(allotment, account, '5');
    await use(allotment, account, '5'); // 90 %
    await use(allotment, account, '20'); // 110 %
    await waitFor(() => alerts.events.length >= 3, 10_000, 'three alerts');
    await settle();

    expect(alerts.events.map((alert) => [alert.threshold, alert.used, alert.capacity, alert.percentUsed])).toEqual([
      [80, '80', '100', 80],
      [90, '90', '100', 90],
      [100, '110', '100', 110],
    ]);
    expect(new Set(alerts.events.map((alert) => alert.id)).size).toBe(3);
    expect(alerts.events.every((alert) => alert.accountId === account.accountId && alert.feature === FEATURE)).toBe(true);

    // The same alerts are stored and listed newest first.
    const listed = await gql(allotment, ACCOUNT_ALERTS, { id: account.accountId });
    expect(listed._entities[0].alerts.map((alert: any) => alert.id)).toEqual(alerts.events.map((alert) => alert.id).reverse());
  });

  it('fires 80, 90 and 100 in order when one batch jumps from 70 % to 105 %', async () => {
    const account = await alertingAccount(allotment);
    await use(allotment, account, '70');
    const alerts = await subscribeAlerts(account.accountId);

    expect(await useBatch(allotment, account, ['10', '10', '15'])).toBe(3);
    await waitFor(() => alerts.events.length >= 3, 10_000, 'three alerts');
    await settle();
    expect(alerts.events.map((alert) => alert.threshold)).toEqual([80, 90, 100]);
    expect(alerts.events.map((alert) => alert.used)).toEqual(['105', '105', '105']);
  });

  it('sends nothing for a second climb in the same period, nor for retried events', async () => {
    const account = await alertingAccount(allotment);
    const alerts = await subscribeAlerts(account.accountId);
    await use(allotment, account, '95', { idempotencyKey: 'climb-1' });
    await waitFor(() => alerts.events.length >= 2, 10_000, '80 and 90');

    await use(allotment, account, '95', { idempotencyKey: 'climb-1' }); // a client retry: DUPLICATE
    await use(allotment, account, '1');
    await use(allotment, account, '10'); // 106 %: 100 fires, once
    await use(allotment, account, '50');
    await settle();

    expect(alerts.events.map((alert) => alert.threshold)).toEqual([80, 90, 100]);
    const stored = await allotment.database.db.collection('usage_alerts').countDocuments({ accountId: account.accountId });
    expect(stored).toBe(3);
  });

  it('fires again after capacity grows and usage climbs back past the thresholds', async () => {
    const account = await alertingAccount(allotment);
    const alerts = await subscribeAlerts(account.accountId);
    await use(allotment, account, '95');
    await waitFor(() => alerts.events.length >= 2, 10_000, '80 and 90');

    // An upgrade to 200 puts usage at 47.5 %: every threshold is below it again.
    await gql(allotment, SET_INCLUDED, { contractId: account.contractId, input: { feature: FEATURE, included: '200' } });
    await use(allotment, account, '70'); // 165 of 200: 82.5 %
    await waitFor(() => alerts.events.length >= 3, 10_000, 'the re-armed 80');
    await use(allotment, account, '40'); // 205 of 200
    await waitFor(() => alerts.events.length >= 5, 10_000, 'the re-armed 90 and the first 100');
    await settle();

    expect(alerts.events.map((alert) => [alert.threshold, alert.capacity])).toEqual([
      [80, '100'],
      [90, '100'],
      [80, '200'],
      [90, '200'],
      [100, '200'],
    ]);
    expect(new Set(alerts.events.map((alert) => alert.id)).size).toBe(5);
  });

  it('fires again after a grant lowers the ratio and usage climbs back', async () => {
    const account = await alertingAccount(allotment);
    const alerts = await subscribeAlerts(account.accountId);
    await use(allotment, account, '95');
    await waitFor(() => alerts.events.length >= 2, 10_000, '80 and 90');

    // 100 granted units: 95 of 200 is 47.5 %, so 80, 90 and 100 are armed again.
    await gql(allotment, ISSUE_GRANT, {
      input: {
        accountId: account.accountId,
        feature: FEATURE,
        amount: '100',
        reason: 'Goodwill credit',
        idempotencyKey: `grant-${account.accountId}`,
      },
    });
    await use(allotment, account, '70'); // 165 of 200
    await use(allotment, account, '20'); // 185 of 200
    await waitFor(() => alerts.events.length >= 4, 10_000, 'the re-armed 80 and 90');
    await settle();

    expect(alerts.events.map((alert) => [alert.threshold, alert.used, alert.capacity])).toEqual([
      [80, '95', '100'],
      [90, '95', '100'],
      [80, '165', '200'],
      [90, '185', '200'],
    ]);
  });

  it('fires at once the thresholds a downgrade puts usage past, and only those', async () => {
    const account = await alertingAccount(allotment);
    const alerts = await subscribeAlerts(account.accountId);
    await use(allotment, account, '70');

    // 70 of 80 is 87.5 %: 80 is reached without any usage crossing it.
    await gql(allotment, SET_INCLUDED, { contractId: account.contractId, input: { feature: FEATURE, included: '80' } });
    await waitFor(() => alerts.events.length >= 1, 10_000, 'the 80 of the downgrade');
    await use(allotment, account, '2'); // 90 %
    await waitFor(() => alerts.events.length >= 2, 10_000, 'the 90');
    await settle();
    expect(alerts.events.map((alert) => [alert.threshold, alert.used, alert.capacity])).toEqual([
      [80, '70', '80'],
      [90, '72', '80'],
    ]);
  });

  it('neither re-arms nor fires when a contract is suspended and reactivated', async () => {
    const account = await alertingAccount(allotment);
    const alerts = await subscribeAlerts(account.accountId);
    await use(allotment, account, '85');
    await waitFor(() => alerts.events.length >= 1, 10_000, 'the 80');

    await gql(allotment, SET_STATUS, { contractId: account.contractId, status: 'SUSPENDED' });
    await gql(allotment, SET_STATUS, { contractId: account.contractId, status: 'ACTIVE' });
    await use(allotment, account, '1');
    await settle();
    expect(alerts.events.map((alert) => alert.threshold)).toEqual([80]);
  });

  it('starts fresh in a new period', async () => {
    const account = await alertingAccount(allotment, { resetPeriod: 'DAY' });
    const alerts = await subscribeAlerts(account.accountId);
    const yesterday = new Date(Date.now() - 86_400_000).toISOString();

    await use(allotment, account, '85', { timestamp: yesterday });
    await waitFor(() => alerts.events.length >= 1, 10_000, "yesterday's 80");
    await use(allotment, account, '85'); // today: a new counter, so 80 fires again
    await waitFor(() => alerts.events.length >= 2, 10_000, "today's 80");
    await settle();

    expect(alerts.events.map((alert) => alert.threshold)).toEqual([80, 80]);
    const [previous, current] = alerts.events;
    expect(previous.periodEnd).toBe(current.periodStart);
    expect(new Date(current.periodStart).getTime()).toBeGreaterThan(new Date(previous.periodStart).getTime());
  });

  it('narrows alerts to the requested features and accounts', async () => {
    const account = await alertingAccount(allotment);
    const other = await alertingAccount(allotment);
    const mine = await subscribeAlerts(account.accountId);
    const otherFeature = await subscribeAlerts(account.accountId, { features: ['bulk_export'] });

    await use(allotment, other, '100');
    await use(allotment, account, '80');
    await waitFor(() => mine.events.length >= 1, 10_000, 'own alert');
    await settle();

    expect(mine.events.map((alert) => [alert.accountId, alert.threshold])).toEqual([[account.accountId, 80]]);
    expect(otherFeature.events).toEqual([]);
  });

  it('refuses a customer token another account (FORBIDDEN) and accepts its own', async () => {
    const account = await alertingAccount(allotment);
    const customer = await signToken({ scope: 'entitlements:read', account_id: 'acct_someone_else' });
    const client = liveClient(allotment.wsUrl, customer);
    clients.push(client);

    const refused = collect<any>(client, USAGE_ALERTS, { accountId: account.accountId }, 'usageAlerts');
    await waitFor(() => refused.completed || refused.errors.length > 0 || refused.errorPayloads.length > 0, 10_000, 'refusal');
    expect(refused.errorPayloads[0]?.errors[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(hub().listenerCounts().alerts).toBe(0);

    const ownToken = await signToken({ scope: 'entitlements:read', account_id: account.accountId });
    const own = await subscribeAlerts(account.accountId, { token: ownToken });
    await use(allotment, account, '80');
    await waitFor(() => own.events.length >= 1, 10_000, 'own alert');

    const noScope = await signToken({ scope: 'usage:write' });
    const unscopedClient = liveClient(allotment.wsUrl, noScope);
    clients.push(unscopedClient);
    const unscoped = collect<any>(unscopedClient, USAGE_ALERTS, { accountId: account.accountId }, 'usageAlerts');
    await waitFor(() => unscoped.errorPayloads.length > 0, 10_000, 'scope refusal');
    expect(unscoped.errorPayloads[0]?.errors[0]?.extensions?.code).toBe('FORBIDDEN');
  });

  it('ends a subscriber that falls more than 1,000 alerts behind with a clear error', async () => {
    const account = await alertingAccount(allotment);
    const alerts = await subscribeAlerts(account.accountId);
    // More alerts than the bound arrive in one synchronous burst, before the socket can drain.
    const burst = Array.from({ length: 1_100 }, (_, i) => ({
      _id: `burst|${i}`,
      accountId: account.accountId,
      feature: FEATURE,
      counterId: `${account.accountId}|${FEATURE}|burst`,
      threshold: 80,
      epoch: i,
      used: 80_000_000n,
      capacity: 100_000_000n,
      periodStart: new Date('2026-11-01T00:00:00Z'),
      periodEnd: new Date('2026-12-01T00:00:00Z'),
      triggeredAt: new Date(),
    }));
    hub().dispatchAlerts(burst);
    expect(hub().listenerCounts().alerts).toBe(0); // released at once, not after draining

    await waitFor(() => alerts.completed, 10_000, 'the subscription to end');
    const [error] = alerts.errorPayloads[0]?.errors ?? [];
    expect(error?.message).toMatch(/fell more than 1000 alerts behind.*Subscribe again, then read Account.alerts/);
    expect(error?.extensions).toMatchObject({ code: 'INTERNAL_SERVER_ERROR', reason: 'SUBSCRIBER_TOO_SLOW' });
    expect(alerts.events.length).toBeLessThanOrEqual(1);
  });
});
