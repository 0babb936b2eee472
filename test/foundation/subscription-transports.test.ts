/**
 * The subscription paths a frontend developer takes through a real gateway (Hive Gateway
 * runtime in-process, served over HTTP and graphql-ws), and the HTTP answers a client gets
 * when it sends a subscription where one cannot run.
 */
import type { Client } from 'graphql-ws';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { alertingAccount, defineMeteredFeature, use } from '../alerts/fixtures.js';
import { collect, liveClient, settle, USAGE_ALERTS, waitFor } from '../alerts/live-client.js';
import { serveGateway, startAccountsSubgraph, startGateway } from '../support/gateway.js';
import { signToken, startTestInstance, type TestInstance } from '../support/harness.js';

let allotment: TestInstance;
let accounts: Awaited<ReturnType<typeof startAccountsSubgraph>>;
/** Allotment's subscriptions over graphql-ws (as docker/ configures it). */
let wsGateway: Awaited<ReturnType<typeof startGateway>>;
let wsServed: Awaited<ReturnType<typeof serveGateway>>;
/** Allotment's transport left at Hive Gateway's default: subscriptions over HTTP. */
let httpGateway: Awaited<ReturnType<typeof startGateway>>;
let httpServed: Awaited<ReturnType<typeof serveGateway>>;
const clients: Client[] = [];

beforeAll(async () => {
  allotment = await startTestInstance();
  await defineMeteredFeature(allotment);
  accounts = await startAccountsSubgraph();
  wsGateway = await startGateway({ allotmentUrl: allotment.url, accountsUrl: accounts.url });
  wsServed = await serveGateway(wsGateway.gateway);
  httpGateway = await startGateway({ allotmentUrl: allotment.url, accountsUrl: accounts.url, subscriptions: 'http' });
  httpServed = await serveGateway(httpGateway.gateway);
});
afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.dispose()));
  await waitFor(() => hub().listenerCounts().alerts === 0, 10_000, 'listeners released');
});
afterAll(async () => {
  await wsServed?.close();
  await httpServed?.close();
  await wsGateway?.stop();
  await httpGateway?.stop();
  await accounts?.stop();
  await allotment?.stop();
});

const hub = () => allotment.services.live.hub;

function clientOf(wsUrl: string, token: string | undefined): Client {
  const client = liveClient(wsUrl, token);
  clients.push(client);
  return client;
}

/** Everything the client heard, as text, once it heard an error or a result with errors. */
async function firstErrorOf(subscription: ReturnType<typeof collect>): Promise<string> {
  await waitFor(() => subscription.errorPayloads.length > 0 || subscription.errors.length > 0, 5_000, 'an error to reach the client');
  return JSON.stringify([subscription.errorPayloads, subscription.errors]);
}

describe("Hive Gateway's default HTTP subscription transport (GraphQL over SSE)", () => {
  it('streams alerts through the gateway and releases the upstream subscription when the client leaves', async () => {
    const account = await alertingAccount(allotment);
    const token = await signToken({ scope: 'entitlements:read', account_id: account.accountId });
    const client = clientOf(httpServed.wsUrl, token);
    const alerts = collect<any>(client, USAGE_ALERTS, { accountId: account.accountId }, 'usageAlerts');
    await waitFor(
      () => hub().listenerCounts().alerts === 1 || alerts.errors.length + alerts.errorPayloads.length > 0,
      5_000,
      'the gateway to subscribe upstream',
    );
    expect(alerts.errorPayloads).toEqual([]);
    expect(alerts.errors).toEqual([]);

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
    await waitFor(() => hub().listenerCounts().alerts === 0, 5_000, 'the upstream SSE request to end');
  });

  it('passes the caller identity on: FORBIDDEN for another account, UNAUTHENTICATED without a token', async () => {
    const account = await alertingAccount(allotment);
    const other = await signToken({ scope: 'entitlements:read', account_id: 'acct_not_this_one' });
    const refused = collect<any>(clientOf(httpServed.wsUrl, other), USAGE_ALERTS, { accountId: account.accountId }, 'usageAlerts');
    expect(await firstErrorOf(refused)).toContain('FORBIDDEN');

    const anonymous = collect<any>(clientOf(httpServed.wsUrl, undefined), USAGE_ALERTS, { accountId: account.accountId }, 'usageAlerts');
    expect(await firstErrorOf(anonymous)).toContain('UNAUTHENTICATED');
    expect(hub().listenerCounts().alerts).toBe(0);
  });
});

describe('an unauthenticated subscribe through the gateway over graphql-ws', () => {
  it('reaches the client as UNAUTHENTICATED instead of hanging', async () => {
    const account = await alertingAccount(allotment);
    const anonymous = collect<any>(clientOf(wsServed.wsUrl, undefined), USAGE_ALERTS, { accountId: account.accountId }, 'usageAlerts');
    expect(await firstErrorOf(anonymous)).toContain('UNAUTHENTICATED');

    const expired = await signToken({ scope: 'entitlements:read', expiresIn: -10 });
    const stale = collect<any>(clientOf(wsServed.wsUrl, expired), USAGE_ALERTS, { accountId: account.accountId }, 'usageAlerts');
    expect(await firstErrorOf(stale)).toContain('UNAUTHENTICATED');
    expect(hub().listenerCounts().alerts).toBe(0);
  });
});

describe('subscriptions over plain HTTP', () => {
  it('answers a subscription sent as a POST with BAD_REQUEST (400) naming the transports that work', async () => {
    const account = await alertingAccount(allotment);
    const response = await allotment.graphql(USAGE_ALERTS, { accountId: account.accountId });
    expect(response.status).toBe(400);
    expect(response.errors?.[0]?.extensions?.code).toBe('BAD_REQUEST');
    expect(response.errors?.[0]?.message).toMatch(/graphql-ws.*text\/event-stream.*callback/);
    expect(hub().listenerCounts().alerts).toBe(0);
  });

  it('keeps CSRF prevention: a header-less GET query is still refused, and SSE serves neither queries nor mutations', async () => {
    const token = await signToken();
    const csrf = await fetch(`${allotment.url}?query=${encodeURIComponent('{ _service { sdl } }')}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(csrf.status).toBe(400);
    expect(await csrf.text()).toMatch(/Cross-Site Request Forgery/);

    const mutation = `mutation { defineFeature(input: { key: "csrf_probe", name: "x", type: BOOLEAN }) { key } }`;
    const viaSse = await fetch(`${allotment.url}?query=${encodeURIComponent(mutation)}`, {
      headers: { accept: 'text/event-stream', authorization: `Bearer ${token}` },
    });
    expect(viaSse.status).toBe(405);
    expect(((await viaSse.json()) as any).errors[0].extensions.code).toBe('BAD_REQUEST');
    expect(await allotment.database.db.collection('features').countDocuments({ _id: 'csrf_probe' as any })).toBe(0);
  });

  it('refuses an SSE subscription without a token with 401 before reading the query', async () => {
    const response = await fetch(`${allotment.url}?query=${encodeURIComponent('subscription { this is not graphql')}`, {
      headers: { accept: 'text/event-stream' },
    });
    expect(response.status).toBe(401);
    expect(((await response.json()) as any).errors[0].extensions.code).toBe('UNAUTHENTICATED');
  });

  it('ends an SSE subscription with UNAUTHENTICATED when its token expires', async () => {
    const account = await alertingAccount(allotment);
    const token = await signToken({ scope: 'entitlements:read', expiresIn: 3 });
    const response = await fetch(
      `${allotment.url}?query=${encodeURIComponent(USAGE_ALERTS)}&variables=${encodeURIComponent(JSON.stringify({ accountId: account.accountId }))}`,
      { headers: { accept: 'text/event-stream', authorization: `Bearer ${token}` } },
    );
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/text\/event-stream/);
    await waitFor(() => hub().listenerCounts().alerts === 1, 5_000, 'the SSE subscription');
    const body = await response.text(); // ends when the server completes the stream
    expect(body).toMatch(/event: next\ndata: \{"errors":\[\{"message":"Token expired[^\n]*"code":"UNAUTHENTICATED"/);
    expect(body.trimEnd()).toMatch(/event: complete\ndata:$/);
    await waitFor(() => hub().listenerCounts().alerts === 0, 5_000, 'the listener released');
  });
});
