/**
 * Subscriptions as dashboards use them: through a federated gateway (Hive Gateway runtime
 * in-process, served over HTTP and graphql-ws), which opens its own graphql-ws connection
 * to Allotment with the caller's token.
 */
import type { Client } from 'graphql-ws';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { serveGateway, startAccountsSubgraph, startGateway } from '../support/gateway.js';
import { signToken, startTestInstance, type TestInstance } from '../support/harness.js';
import { alertingAccount, defineMeteredFeature, use } from './fixtures.js';
import { collect, liveClient, settle, USAGE_ALERTS, waitFor } from './live-client.js';

let allotment: TestInstance;
let accounts: Awaited<ReturnType<typeof startAccountsSubgraph>>;
let gateway: Awaited<ReturnType<typeof startGateway>>;
let served: Awaited<ReturnType<typeof serveGateway>>;
const clients: Client[] = [];

beforeAll(async () => {
  allotment = await startTestInstance();
  await defineMeteredFeature(allotment);
  accounts = await startAccountsSubgraph();
  gateway = await startGateway({ allotmentUrl: allotment.url, accountsUrl: accounts.url });
  served = await serveGateway(gateway.gateway);
});
afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.dispose()));
});
afterAll(async () => {
  await served?.close();
  await gateway?.stop();
  await accounts?.stop();
  await allotment?.stop();
});

const hub = () => allotment.services.live.hub;

function gatewayClient(token: string): Client {
  const client = liveClient(served.wsUrl, token);
  clients.push(client);
  return client;
}

describe('subscriptions through the gateway', () => {
  it('delivers 80, 90 and 100 to a dashboard subscribed at the gateway, and releases the listener on close', async () => {
    const account = await alertingAccount(allotment);
    const token = await signToken({ scope: 'entitlements:read', account_id: account.accountId });
    const client = gatewayClient(token);
    const alerts = collect<any>(client, USAGE_ALERTS, { accountId: account.accountId }, 'usageAlerts');
    await waitFor(() => hub().listenerCounts().alerts === 1, 5_000, 'the gateway to subscribe upstream');

    await use(allotment, account, '85');
    await use(allotment, account, '20');
    await waitFor(() => alerts.events.length >= 3, 10_000, 'three alerts through the gateway');
    await settle();
    expect(alerts.events.map((alert) => [alert.threshold, alert.used])).toEqual([
      [80, '85'],
      [90, '105'],
      [100, '105'],
    ]);

    await client.dispose();
    await waitFor(() => hub().listenerCounts().alerts === 0, 5_000, 'the upstream subscription to end');
  });

  it('passes the caller identity on: a customer token cannot subscribe to another account', async () => {
    const account = await alertingAccount(allotment);
    const token = await signToken({ scope: 'entitlements:read', account_id: 'acct_not_this_one' });
    const refused = collect<any>(gatewayClient(token), USAGE_ALERTS, { accountId: account.accountId }, 'usageAlerts');
    await waitFor(() => refused.errorPayloads.length > 0 || refused.errors.length > 0, 5_000, 'refusal');
    expect(JSON.stringify([refused.errorPayloads, refused.errors])).toContain('FORBIDDEN');
    expect(hub().listenerCounts().alerts).toBe(0);
  });

  it('pushes live balances through the gateway, resolving fields across subgraphs', async () => {
    const account = await alertingAccount(allotment);
    const token = await signToken({ scope: 'entitlements:read' });
    const balances = collect<any>(
      gatewayClient(token),
      `subscription ($accountId: ID!) { entitlementUpdated(accountId: $accountId) { accountId entitlement { feature { key } used remaining percentUsed } } }`,
      { accountId: account.accountId },
      'entitlementUpdated',
    );
    await waitFor(() => hub().listenerCounts().balances === 1, 5_000, 'the gateway to subscribe upstream');
    await use(allotment, account, '12.5');
    await waitFor(() => balances.events.some((update) => update.entitlement.used === '12.5'), 10_000, 'the balance update');
    expect(balances.events.at(-1)).toEqual({
      accountId: account.accountId,
      entitlement: { feature: { key: 'api_calls' }, used: '12.5', remaining: '87.5', percentUsed: 12.5 },
    });
  });
});
