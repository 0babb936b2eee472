/**
 * Subscriptions and tokens over graphql-ws, with real graphql-ws clients: a connection's
 * subscriptions end when its token does, a subscribe without a (valid) token is answered
 * with UNAUTHENTICATED for that operation (never a closed socket), operations per socket
 * are capped, and tokens must carry `exp`.
 */
import { SignJWT } from 'jose';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { alertingAccount, defineMeteredFeature, use } from '../alerts/fixtures.js';
import { collect, settle, USAGE_ALERTS, waitFor } from '../alerts/live-client.js';
import { requestCommands, signToken, startTestInstance, TEST_JWT_SECRET, type TestInstance } from '../support/harness.js';

let allotment: TestInstance;
let capped: TestInstance;
const clients: Client[] = [];

beforeAll(async () => {
  [allotment, capped] = await Promise.all([startTestInstance(), startTestInstance({ env: { WS_MAX_SUBSCRIPTIONS_PER_CONNECTION: '2' } })]);
  await Promise.all([defineMeteredFeature(allotment), defineMeteredFeature(capped)]);
});
afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.dispose()));
});
afterAll(async () => {
  await allotment?.stop();
  await capped?.stop();
});

/** A client that keeps its socket open between operations (not lazy), recording close codes. */
function socketClient(instance: TestInstance, token: string | undefined) {
  const closes: number[] = [];
  let connected = 0;
  const client = createClient({
    url: instance.wsUrl,
    webSocketImpl: WebSocket,
    connectionParams: token ? { authorization: `Bearer ${token}` } : undefined,
    retryAttempts: 0,
    lazy: false,
    on: {
      connected: () => void connected++,
      closed: (event) => void closes.push((event as { code: number }).code),
    },
    onNonLazyError: () => undefined,
  });
  clients.push(client);
  return { client, closes, connections: () => connected };
}

async function metric(instance: TestInstance, name: string): Promise<number> {
  const text = await (await fetch(instance.url.replace(/\/graphql$/, '/metrics'))).text();
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${name} `));
  return Number(line?.split(' ')[1]);
}

const listeners = (instance: TestInstance) => instance.services.live.hub.listenerCounts().alerts;

/** Subscribes and resolves with the error the server answered the subscribe with (an `error` message). */
function refusalOf(client: Client, accountId: string): Promise<Array<{ message: string; extensions?: Record<string, unknown> }>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no answer to the subscribe within 5 s')), 5_000);
    client.subscribe(
      { query: USAGE_ALERTS, variables: { accountId } },
      {
        next: (result) => {
          clearTimeout(timer);
          resolve((result.errors ?? []) as any);
        },
        error: (error) => {
          clearTimeout(timer);
          resolve(Array.isArray(error) ? error : [{ message: String((error as Error)?.message ?? error), extensions: { closed: true } }]);
        },
        complete: () => undefined,
      },
    );
  });
}

describe('a subscription ends when its token does', () => {
  it('ends each streaming subscription with UNAUTHENTICATED at expiry, releases it, and refuses later subscribes on the socket cleanly', async () => {
    const account = await alertingAccount(allotment);
    const baseline = await metric(allotment, 'allotment_active_subscriptions');
    // Long enough for the alert below to arrive first on a loaded machine.
    const token = await signToken({ scope: 'entitlements:read', account_id: account.accountId, expiresIn: 5 });
    const { client, closes } = socketClient(allotment, token);

    const alerts = collect<any>(client, USAGE_ALERTS, { accountId: account.accountId }, 'usageAlerts');
    await waitFor(() => listeners(allotment) === 1, 5_000, 'the subscription to register');
    expect(await metric(allotment, 'allotment_active_subscriptions')).toBe(baseline + 1);
    await use(allotment, account, '85');
    await waitFor(() => alerts.events.length === 1, 10_000, 'the alert before expiry');

    // exp is at most 5 s away: the server ends the subscription itself.
    await waitFor(() => alerts.completed, 10_000, 'the subscription to end at expiry');
    expect(alerts.errorPayloads).toHaveLength(1);
    expect(alerts.errorPayloads[0]!.errors[0]!.extensions?.code).toBe('UNAUTHENTICATED');
    expect(alerts.errorPayloads[0]!.errors[0]!.message).toMatch(/expired/i);
    await waitFor(() => listeners(allotment) === 0, 5_000, 'the listener to be released');
    expect(await metric(allotment, 'allotment_active_subscriptions')).toBe(baseline);

    // Nothing more is delivered after expiry.
    await use(allotment, account, '10');
    await settle();
    expect(alerts.events).toHaveLength(1);

    // A subscribe on the same, still open socket: UNAUTHENTICATED for that operation only.
    const refused = await refusalOf(client, account.accountId);
    expect(refused[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect(refused[0]?.message).toMatch(/expired/i);
    await settle(100);
    expect(closes).toEqual([]);
    expect(listeners(allotment)).toBe(0);
    expect(await metric(allotment, 'allotment_active_subscriptions')).toBe(baseline);
  });
});

describe('a subscribe without a valid token', () => {
  it('is answered with UNAUTHENTICATED for that operation, without closing the socket or executing anything', async () => {
    const account = await alertingAccount(allotment);
    const { client, closes } = socketClient(allotment, undefined);
    const commandsBefore = allotment.commands.length;

    const refused = await refusalOf(client, account.accountId);
    expect(refused).toHaveLength(1);
    expect(refused[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect(refused[0]?.message).toMatch(/authorization/i);
    // The same socket answers the next operation the same way: it was never closed.
    expect((await refusalOf(client, account.accountId))[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect(closes).toEqual([]);
    expect(listeners(allotment)).toBe(0);
    expect(requestCommands(allotment, commandsBefore)).toEqual([]);
  });

  it('answers an expired or forged token per operation too', async () => {
    const account = await alertingAccount(allotment);
    const expired = socketClient(allotment, await signToken({ scope: 'entitlements:read', expiresIn: -10 }));
    const refused = await refusalOf(expired.client, account.accountId);
    expect(refused[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect(refused[0]?.message).toMatch(/expired/i);

    const forged = socketClient(allotment, (await signToken()).replace(/\.[^.]+$/, '.c2lnbmF0dXJl'));
    expect((await refusalOf(forged.client, account.accountId))[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect([...expired.closes, ...forged.closes]).toEqual([]);
  });
});

describe('tokens must expire', () => {
  async function tokenWithoutExp(): Promise<string> {
    return new SignJWT({ scope: 'entitlements:read' })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('forever')
      .setIssuedAt()
      .sign(new TextEncoder().encode(TEST_JWT_SECRET));
  }

  it('refuses a token without exp over HTTP with 401 and says why', async () => {
    const response = await allotment.graphql('{ _service { sdl } }', {}, { token: await tokenWithoutExp() });
    expect(response.status).toBe(401);
    expect(response.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect(response.errors?.[0]?.message).toMatch(/"exp"/);
  });

  it('refuses a token without exp over graphql-ws', async () => {
    const account = await alertingAccount(allotment);
    const { client } = socketClient(allotment, await tokenWithoutExp());
    const refused = await refusalOf(client, account.accountId);
    expect(refused[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect(refused[0]?.message).toMatch(/"exp"/);
  });
});

describe('operations per socket are capped (WS_MAX_SUBSCRIPTIONS_PER_CONNECTION)', () => {
  it('refuses the subscribe over the cap with BAD_REQUEST, keeps the socket and the others streaming', async () => {
    const account = await alertingAccount(capped);
    const token = await signToken({ scope: 'entitlements:read' });
    const baseline = await metric(capped, 'allotment_active_subscriptions');
    const { client, closes } = socketClient(capped, token);
    const first = collect<any>(client, USAGE_ALERTS, { accountId: account.accountId }, 'usageAlerts');
    const second = collect<any>(client, USAGE_ALERTS, { accountId: account.accountId }, 'usageAlerts');
    await waitFor(() => listeners(capped) === 2, 5_000, 'two subscriptions');

    const refused = await refusalOf(client, account.accountId);
    expect(refused[0]?.extensions?.code).toBe('BAD_REQUEST');
    expect(refused[0]?.message).toMatch(/at most 2/);
    expect(listeners(capped)).toBe(2);
    expect(await metric(capped, 'allotment_active_subscriptions')).toBe(baseline + 2);

    await use(capped, account, '85');
    await waitFor(() => first.events.length === 1 && second.events.length === 1, 10_000, 'both to keep streaming');

    // Completing one makes room for another on the same socket.
    first.stop();
    await waitFor(() => listeners(capped) === 1, 5_000, 'the first to be released');
    const third = collect<any>(client, USAGE_ALERTS, { accountId: account.accountId }, 'usageAlerts');
    await waitFor(() => listeners(capped) === 2, 5_000, 'the third subscription');
    expect(third.errorPayloads).toEqual([]);
    expect(closes).toEqual([]);
    await client.dispose();
    await waitFor(() => listeners(capped) === 0, 5_000, 'all released');
    expect(await metric(capped, 'allotment_active_subscriptions')).toBe(baseline);
  });
});
