/**
 * R23 against the real client: `@segment/analytics-node` pointed at Allotment (its `host`
 * and `path` options), the write key a JWT sent as HTTP Basic by the library itself. A
 * proxy between them lets some batches reach Allotment and then answers 500, so the
 * library retries them: every retried event arrives twice, with its messageId.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Analytics } from '@segment/analytics-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signToken, startTestInstance, type TestInstance } from '../support/harness.js';
import { defineUsageFeatures, meteredAccount, usedNow } from '../support/usage-fixtures.js';

let instance: TestInstance;
let base: string;
beforeAll(async () => {
  instance = await startTestInstance({ env: { SEGMENT_EVENTS: JSON.stringify({ 'API Call': 'api_calls' }) } });
  base = new URL(instance.url).origin;
  await defineUsageFeatures(instance);
});
afterAll(() => instance.stop());

const used = (on: TestInstance, accountId: string) => usedNow(on, accountId, 'api_calls');

/** Forwards to Allotment; after Allotment answered, fails the first attempt of `failBatches` usage batches with a 500. */
async function flakyProxy(target: string, failBatches: number) {
  const seen = { batches: 0, events: 0, retriedEvents: 0, failed: 0 };
  let firstUsageAttempts = 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', async () => {
      const body = Buffer.concat(chunks);
      const batch = (JSON.parse(body.toString('utf8')) as { batch: Array<{ event?: string }> }).batch;
      const events = batch.length;
      const usageOnly = batch.every((call) => call.event === 'API Call');
      seen.batches += 1;
      seen.events += events;
      const retry = req.headers['x-retry-count'] !== undefined;
      if (retry) seen.retriedEvents += events;
      const answer = await fetch(`${target}${req.url}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: req.headers.authorization ?? '' },
        body,
      });
      const text = await answer.text();
      if (!retry && usageOnly) firstUsageAttempts += 1;
      if (answer.status === 200 && !retry && usageOnly && seen.failed < failBatches && firstUsageAttempts % 9 === 1) {
        seen.failed += 1;
        res.writeHead(500).end('lost answer');
        return;
      }
      res.writeHead(answer.status, { 'content-type': 'application/json' }).end(text);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, close: () => new Promise((r) => server.close(r)) };
}

describe('POST /ingest/segment with @segment/analytics-node', () => {
  it('counts 900 distinct track events once each though 100 of them were sent twice', async () => {
    const { accountId } = await meteredAccount(instance, { included: '1000000', enforcement: 'NONE' });
    const writeKey = await signToken({ scope: 'usage:write', sub: 'segment-source' });
    const proxy = await flakyProxy(base, 10);
    const analytics = new Analytics({ writeKey, host: proxy.url, path: '/ingest/segment', flushAt: 10, maxRetries: 5 });
    let expected = 0;
    for (let i = 0; i < 900; i++) {
      const quantity = (i % 7) + 1;
      expected += quantity;
      analytics.track({ userId: accountId, event: 'API Call', properties: { quantity, endpoint: '/v1/search' } });
    }
    // Not mapped by SEGMENT_EVENTS: acknowledged and counted, not recorded.
    for (let i = 0; i < 5; i++) analytics.track({ userId: accountId, event: 'Page Viewed' });
    await analytics.closeAndFlush({ timeout: 60_000 });
    await proxy.close();

    expect(proxy.seen.failed).toBe(10);
    expect(proxy.seen.retriedEvents).toBe(100);
    expect(proxy.seen.events).toBe(1_005);
    expect(await used(instance, accountId)).toBe(String(expected));
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/allotment_segment_events_total\{outcome="duplicate"\} 100\b/);
    expect(metrics).toMatch(/allotment_segment_events_total\{outcome="unmapped"\} 5\b/);
  });

  it('takes the account from context.groupId, then groupId, then userId, and quantity 1 by default', async () => {
    const [a, b, c] = await Promise.all([1, 2, 3].map(() => meteredAccount(instance, { included: '1000', enforcement: 'NONE' })));
    const writeKey = await signToken({ scope: 'usage:write' });
    const call = (messageId: string, extra: Record<string, unknown>) => ({
      type: 'track',
      event: 'API Call',
      messageId,
      userId: c!.accountId,
      ...extra,
    });
    const response = await fetch(`${base}/ingest/segment`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Basic ${Buffer.from(`${writeKey}:`).toString('base64')}` },
      body: JSON.stringify({
        batch: [
          call('m1', { context: { groupId: a!.accountId }, groupId: b!.accountId }),
          call('m2', { groupId: b!.accountId, properties: { quantity: '2.5' } }),
          call('m3', {}),
          { type: 'identify', userId: 'someone', messageId: 'm4' },
        ],
      }),
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ success: true, accepted: 3, ignored: 1 });
    expect([await used(instance, a!.accountId), await used(instance, b!.accountId), await used(instance, c!.accountId)]).toEqual([
      '1',
      '2.5',
      '1',
    ]);
  });

  it('answers 400 naming the field, 401 without a write key, 403 without usage:write', async () => {
    const writeKey = await signToken({ scope: 'usage:write' });
    const post = (body: unknown, key: string | null = writeKey) =>
      fetch(`${base}/ingest/segment`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(key ? { authorization: `Basic ${Buffer.from(`${key}:`).toString('base64')}` } : {}),
        },
        body: JSON.stringify(body),
      });
    const cases: Array<[unknown, string]> = [
      [{ batch: [{ type: 'track', event: 'API Call', userId: 'acct_1' }] }, 'batch[0].messageId'],
      [{ batch: [{ type: 'track', messageId: 'x', event: 'API Call' }] }, 'batch[0].userId'],
      [
        { batch: [{ type: 'track', messageId: 'x', userId: 'a', event: 'API Call', properties: { quantity: true } }] },
        'batch[0].properties.quantity',
      ],
      [
        { batch: [{ type: 'track', messageId: 'x', userId: 'a', event: 'API Call', properties: { quantity: -1 } }] },
        'batch[0].properties.quantity',
      ],
      [{ batch: 'nope' }, 'batch'],
      [{ type: 'track', messageId: 'x', userId: 'a' }, 'event'],
    ];
    for (const [body, field] of cases) {
      const response = await post(body);
      expect(response.status, field).toBe(400);
      expect((await response.json()).field, field).toBe(field);
    }
    expect((await post({ batch: [] }, null)).status).toBe(401);
    const readOnly = await signToken({ scope: 'entitlements:read' });
    expect((await post({ batch: [{ type: 'track', event: 'API Call', messageId: 'y', userId: 'acct_1' }] }, readOnly)).status).toBe(403);
  });
});
