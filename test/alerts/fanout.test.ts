/**
 * Fan-out across instances: two Allotment instances on one database, like two pods.
 * Alerts stored by either reach subscribers on both, once each and in threshold order,
 * and many subscriptions release everything when their sockets close.
 */
import type { Client } from 'graphql-ws';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { startMongoJavaServer, type MongoJavaServer } from '../../src/dev/mongo-java-server.js';
import { signToken, startTestInstance, uniqueDbName, type TestInstance } from '../support/harness.js';
import { alertingAccount, alertingAccounts, defineMeteredFeature, FEATURE, use } from './fixtures.js';
import { gql } from '../support/fixtures.js';
import { collect, liveClient, settle, USAGE_ALERTS, waitFor, type Collected } from './live-client.js';
import { LiveUpdates } from '../../src/modules/alerts/live.js';
import { AlertRepository } from '../../src/modules/alerts/repository.js';
import { createLogger } from '../../src/logger.js';

let a: TestInstance;
let b: TestInstance;
let token: string;
const clients: Client[] = [];

let ownServer: MongoJavaServer | undefined;

beforeAll(async () => {
  // Instances here follow each other through change streams. The embedded stand-in
  // rescans its whole oplog for every open stream on every write, so on the stand-in this
  // file gets a fresh server of its own instead of the one the whole run has written to.
  if (inject('mongoEngine') === 'mongo-java-server') ownServer = await startMongoJavaServer({ logger: createLogger('silent') });
  const options = { dbName: uniqueDbName('fanout'), mongodbUri: ownServer?.uri, env: { LIVE_FEED: 'change-stream' } };
  a = await startTestInstance(options);
  b = await startTestInstance(options);
  await defineMeteredFeature(a);
  token = await signToken({ scope: 'entitlements:read' });
});
afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.dispose()));
  await waitFor(() => listeners(a) + listeners(b) === 0, 5_000, 'every listener released');
});
afterAll(async () => {
  await a?.stop();
  await b?.stop();
  await ownServer?.stop();
});

const listeners = (instance: TestInstance) => instance.services.live.hub.listenerCounts().alerts;

function client(instance: TestInstance): Client {
  const created = liveClient(instance.wsUrl, token);
  clients.push(created);
  return created;
}

async function subscribe(instance: TestInstance, accountId: string): Promise<Collected<any>> {
  const before = listeners(instance);
  const alerts = collect<any>(client(instance), USAGE_ALERTS, { accountId }, 'usageAlerts');
  await waitFor(() => listeners(instance) === before + 1, 10_000, 'subscription registered');
  return alerts;
}

describe('across two instances', () => {
  it('delivers an alert stored on instance A to a subscriber on instance B', async () => {
    expect(b.services.live.feedModes).toEqual({ alerts: 'change-stream', balances: 'change-stream' });
    const account = await alertingAccount(a);
    const onB = await subscribe(b, account.accountId);
    await use(a, account, '81');
    await waitFor(() => onB.events.length >= 1, 10_000, 'the alert on B');
    await use(a, account, '30');
    await waitFor(() => onB.events.length >= 3, 10_000, '90 and 100 on B');
    await settle();
    expect(onB.events.map((alert) => alert.threshold)).toEqual([80, 90, 100]);
  });

  it('gives every subscriber on either instance each alert once, in threshold order, when writes race', async () => {
    const racing = await alertingAccounts(a, 3);
    const subscribers = new Map<string, Collected<any>[]>();
    for (const account of racing)
      subscribers.set(account.accountId, [await subscribe(a, account.accountId), await subscribe(b, account.accountId)]);

    // Both instances record small steps on the same counters at the same time.
    await Promise.all(
      racing.flatMap((account) =>
        [a, b].map((instance) =>
          (async () => {
            for (let step = 0; step < 6; step++) await use(instance, account, '10');
          })(),
        ),
      ),
    );
    await waitFor(() => [...subscribers.values()].flat().every((s) => s.events.length >= 3), 5_000, 'every subscriber to get 3 alerts');
    await settle();
    for (const subscriptions of subscribers.values()) {
      for (const { events } of subscriptions) expect(events.map((alert) => alert.threshold)).toEqual([80, 90, 100]);
    }
  });

  it('gives an instance polling the feed (no change streams) the same alerts in the same order', async () => {
    const polling = new LiveUpdates<never>({
      repository: new AlertRepository(b.database.db),
      logger: createLogger('silent'),
      loadBalance: async () => null,
      feedMode: 'polling',
      pollIntervalMs: 50,
    });
    await polling.start();
    try {
      expect(polling.feedModes).toEqual({ alerts: 'polling', balances: 'polling' });
      const account = await alertingAccount(a);
      const queue = polling.hub.subscribeAlerts(account.accountId, null);
      await Promise.all([use(a, account, '85'), use(b, account, '20')]);
      await use(a, account, '1');
      const thresholds: number[] = [];
      for (let i = 0; i < 3; i++) {
        const { value } = await Promise.race([queue.next(), settle(3_000).then(() => ({ value: undefined }))]);
        if (value?.kind === 'alert') thresholds.push(value.alert.threshold);
      }
      expect(thresholds).toEqual([80, 90, 100]);
      await settle(300);
      expect(queue.size).toBe(0);
      await queue.return();
    } finally {
      await polling.stop();
    }
  });

  it('releases listeners when a socket drops without completing its subscriptions', async () => {
    const account = await alertingAccount(a);
    const abrupt = client(b);
    collect<any>(abrupt, USAGE_ALERTS, { accountId: account.accountId }, 'usageAlerts');
    collect<any>(abrupt, USAGE_ALERTS, { accountId: account.accountId, features: [FEATURE] }, 'usageAlerts');
    await waitFor(() => listeners(b) === 2, 10_000, 'two subscriptions');
    abrupt.terminate();
    await waitFor(() => listeners(b) === 0, 10_000, 'the listeners of the dropped socket');
  });
});

describe('1,000 concurrent subscriptions', () => {
  it('all get their alerts, and every listener is released when the sockets close', async () => {
    const accounts = await alertingAccounts(a, 100);
    // 4 sockets (2 per instance), 250 subscriptions each: 10 per account, 5 on each instance.
    const sockets = [client(a), client(a), client(b), client(b)];
    const subscriptions: Array<{ accountId: string; alerts: Collected<any> }> = [];
    for (let i = 0; i < 1_000; i++) {
      const account = accounts[i % accounts.length]!;
      subscriptions.push({
        accountId: account.accountId,
        alerts: collect<any>(sockets[i % 4]!, USAGE_ALERTS, { accountId: account.accountId }, 'usageAlerts'),
      });
    }
    await waitFor(() => listeners(a) === 500 && listeners(b) === 500, 10_000, '1,000 registered subscriptions');

    // One batch crosses 80 % on all 100 accounts at once.
    const events = accounts.map((account, i) => ({
      accountId: account.accountId,
      feature: FEATURE,
      quantity: '85',
      idempotencyKey: `fanout-${i}`,
    }));
    await gql(a, `mutation ($events: [UsageEventInput!]!) { recordUsageBatch(events: $events) { accepted } }`, { events });
    await waitFor(() => subscriptions.every(({ alerts }) => alerts.events.length >= 1), 10_000, 'an alert on every subscription');
    await settle();
    for (const { accountId, alerts } of subscriptions) {
      expect(alerts.events).toHaveLength(1);
      expect(alerts.events[0]).toMatchObject({ accountId, threshold: 80 });
    }

    await Promise.all(clients.splice(0).map((socket) => socket.dispose()));
    await waitFor(() => listeners(a) + listeners(b) === 0, 5_000, 'every listener released');
    expect(a.services.live.hub.listenerCounts()).toEqual({ alerts: 0, balances: 0, balanceChannels: 0 });
  });
});
