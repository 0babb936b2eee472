/**
 * The HTTP callback protocol (Apollo Router's `subscription.mode.callback`, served by
 * ApolloServerPluginSubscriptionCallback): the router POSTs the subscription with a
 * callback URL, and Allotment POSTs `check`, `next` and `complete` messages to it. A
 * small HTTP server plays the router here.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signToken, startTestInstance, type TestInstance } from '../support/harness.js';
import { alertingAccount, defineMeteredFeature, use } from './fixtures.js';
import { USAGE_ALERTS, waitFor } from './live-client.js';

interface CallbackMessage {
  kind: string;
  action: 'check' | 'next' | 'complete' | 'heartbeat';
  id: string;
  verifier: string;
  payload?: { data?: { usageAlerts?: { threshold: number } }; errors?: unknown[] };
  errors?: unknown[];
}

let allotment: TestInstance;
let router: Server;
let callbackUrl: string;
const received: CallbackMessage[] = [];
/** Subscription ids the fake router no longer knows: it answers 404, which ends them. */
const forgotten = new Set<string>();

beforeAll(async () => {
  allotment = await startTestInstance();
  await defineMeteredFeature(allotment);
  router = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk) => (body += chunk));
    request.on('end', () => {
      const message = JSON.parse(body) as CallbackMessage;
      received.push(message);
      response.writeHead(forgotten.has(message.id) ? 404 : 204, { 'subscription-protocol': 'callback/1.0' }).end();
    });
  });
  await new Promise<void>((resolve) => router.listen(0, '127.0.0.1', resolve));
  callbackUrl = `http://127.0.0.1:${(router.address() as AddressInfo).port}/callback`;
});
afterAll(async () => {
  await allotment?.stop();
  router?.closeAllConnections();
  await new Promise((resolve) => router?.close(resolve));
});

describe('usageAlerts over the HTTP callback protocol', () => {
  it('posts each alert to the callback URL and releases the listener when the router forgets it', async () => {
    const account = await alertingAccount(allotment);
    const token = await signToken({ scope: 'entitlements:read', account_id: account.accountId });
    const id = `sub-${account.accountId}`;
    const response = await fetch(allotment.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({
        query: USAGE_ALERTS,
        variables: { accountId: account.accountId },
        extensions: { subscription: { callbackUrl, subscriptionId: id, verifier: 'v-123', heartbeatIntervalMs: 200 } },
      }),
    });
    expect(response.status).toBe(200);
    await waitFor(() => allotment.services.live.hub.listenerCounts().alerts === 1, 10_000, 'the callback subscription');
    expect(received.find((message) => message.id === id)?.action).toBe('check');

    await use(allotment, account, '95');
    const nexts = () => received.filter((message) => message.id === id && message.action === 'next');
    await waitFor(() => nexts().length >= 2, 10_000, 'two next callbacks');
    expect(nexts().map((message) => message.payload?.data?.usageAlerts?.threshold)).toEqual([80, 90]);
    expect(nexts().every((message) => message.verifier === 'v-123')).toBe(true);

    forgotten.add(id);
    await waitFor(() => allotment.services.live.hub.listenerCounts().alerts === 0, 10_000, 'the listener to be released after a 404');
  });
});
