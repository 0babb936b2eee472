/**
 * The example report service and the client under it, against a real Allotment: guard
 * checks, runs and records once; a denied check runs nothing; keys make retries count once;
 * a network failure is retried until Allotment is there, a BAD_USER_INPUT never is.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AllotmentError, createAllotmentClient, UsageNotRecordedError } from '../../src/client/index.js';
import { gql } from '../../test/support/fixtures.js';
import { signToken, startTestInstance, type TestInstance } from '../../test/support/harness.js';
import { freePort } from '../../test/support/stack.js';
import { FEATURE, startReportService } from './service.js';

let allotment: TestInstance;
let service: Awaited<ReturnType<typeof startReportService>>;
let token: string;
const ACCOUNT = 'acct_reports';
const CLIENT_ACCOUNT = 'acct_client';

beforeAll(async () => {
  allotment = await startTestInstance();
  await gql(allotment, 'mutation { defineFeature(input: { key: "reports", name: "Reports", type: METERED, unit: "report" }) { key } }');
  await gql(
    allotment,
    `mutation { publishPlan(input: { key: "reporting", name: "Reporting", currency: "USD", baseFee: "0",
       entitlements: [{ feature: "reports", included: "3", enforcement: HARD }] }) { key } }`,
  );
  await gql(
    allotment,
    `mutation { upsertContract(input: { id: "ctr_reports", accountId: "${ACCOUNT}", planKey: "reporting", startsAt: "2026-01-01T00:00:00Z" }) { id } }`,
  );
  await gql(
    allotment,
    `mutation { upsertContract(input: { id: "ctr_client", accountId: "${CLIENT_ACCOUNT}", planKey: "reporting", startsAt: "2026-01-01T00:00:00Z" }) { id } }`,
  );
  token = await signToken({ scope: 'entitlements:read usage:write', sub: 'report-service' });
  service = await startReportService({ allotmentUrl: allotment.url, token });
});
afterAll(async () => {
  await service?.close();
  await allotment?.stop();
});

const used = async () =>
  (await gql(allotment, `{ checkEntitlement(accountId: "${ACCOUNT}", feature: "${FEATURE}") { used } }`)).checkEntitlement.used;
const buy = (key?: string) =>
  fetch(`${service.url}/accounts/${ACCOUNT}/reports`, { method: 'POST', headers: key ? { 'idempotency-key': key } : {} });

describe('the example report service', () => {
  it('checks, builds and records one unit per report; a retried request counts once; at the HARD limit it builds nothing', async () => {
    const first = await buy('order-1');
    expect(first.status).toBe(201);
    expect(await first.json()).toMatchObject({ usedBefore: '0', recorded: 'ACCEPTED' });
    expect(await used()).toBe('1');

    // The same order again (a client retry): built again, but counted once.
    expect(((await (await buy('order-1')).json()) as any).recorded).toBe('DUPLICATE');
    expect(await used()).toBe('1');

    expect((await buy()).status).toBe(201);
    expect((await buy()).status).toBe(201);
    expect(await used()).toBe('3');
    const builtBefore = service.reportsBuilt.count;
    const denied = await buy();
    expect(denied.status).toBe(402);
    expect(await denied.json()).toEqual({ error: 'limit reached', reason: 'QUOTA_EXCEEDED' });
    expect(service.reportsBuilt.count).toBe(builtBefore);
    expect(await used()).toBe('3');
  });
});

describe('the client', () => {
  it('records nothing when the guarded work throws', async () => {
    const client = createAllotmentClient({ url: allotment.url, token });
    await gql(allotment, 'mutation { defineFeature(input: { key: "exports", name: "Exports", type: METERED, unit: "export" }) { key } }');
    const before = (await client.check('acct_none', 'exports')).used;
    await expect(client.guard('acct_none', 'exports', '1', () => Promise.reject(new Error('boom')))).rejects.toThrow();
    expect((await client.check('acct_none', 'exports')).used).toBe(before);
  });

  it('gives every batch event its own key, and a resent batch counts once', async () => {
    const client = createAllotmentClient({ url: allotment.url, token });
    const events = [1, 2].map((n) => ({ accountId: CLIENT_ACCOUNT, feature: FEATURE, quantity: '0.5', idempotencyKey: `batch-${n}` }));
    const fresh = await client.recordBatch([{ accountId: CLIENT_ACCOUNT, feature: FEATURE, quantity: '0.25' }]);
    expect(fresh.receipts[0]!.idempotencyKey).toMatch(/^[0-9a-f-]{36}$/);
    const resend = await client.recordBatch(events);
    expect(await client.recordBatch(events)).toMatchObject({ accepted: 0, duplicates: 2 });
    expect(resend.receipts.map((receipt) => receipt.idempotencyKey)).toEqual(['batch-1', 'batch-2']);
  });

  it('retries a network failure with backoff, keeping the key, until Allotment answers', async () => {
    const port = await freePort();
    const retries: string[] = [];
    const client = createAllotmentClient({
      url: `http://127.0.0.1:${port}/graphql`,
      token,
      retry: { attempts: 8, baseDelayMs: 100, maxDelayMs: 400 },
      onRetry: ({ error }) => retries.push(error.code),
    });
    // Nothing listens on the port yet; a TCP relay to Allotment opens there after 300 ms.
    let relay: Server | undefined;
    const sockets: Socket[] = [];
    const opening = new Promise<void>((resolve) =>
      setTimeout(() => {
        relay = createServer((socket) => {
          const upstream = new URL(allotment.url);
          const target = connect(Number(upstream.port), upstream.hostname);
          sockets.push(socket, target);
          socket.pipe(target).pipe(socket);
        });
        relay.listen(port, '127.0.0.1', () => resolve());
      }, 300),
    );
    try {
      const receipt = await client.record({
        accountId: CLIENT_ACCOUNT,
        feature: FEATURE,
        quantity: '0.125',
        idempotencyKey: 'net-retry-1',
      });
      await opening;
      expect(receipt).toMatchObject({ status: 'ACCEPTED', idempotencyKey: 'net-retry-1' });
      expect(retries.length).toBeGreaterThan(0);
      expect(new Set(retries)).toEqual(new Set(['NETWORK_ERROR']));
    } finally {
      await opening;
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => relay?.close(resolve));
    }
  });

  it('hands back the unrecorded event when recording fails after the work ran; resent, it counts once', async () => {
    const port = await freePort();
    const sockets: Socket[] = [];
    const upstream = new URL(allotment.url);
    const relay = createServer((socket) => {
      const target = connect(Number(upstream.port), upstream.hostname);
      sockets.push(socket, target);
      socket.pipe(target).pipe(socket);
    });
    await new Promise<void>((resolve) => relay.listen(port, '127.0.0.1', resolve));
    const client = createAllotmentClient({ url: `http://127.0.0.1:${port}/graphql`, token, retry: { attempts: 2, baseDelayMs: 10 } });
    // The work takes the network down with it: the check went through, the record cannot.
    const failure = await client
      .guard(CLIENT_ACCOUNT, FEATURE, '0.5', async () => {
        const closed = new Promise<void>((resolve) => relay.close(() => resolve()));
        for (const socket of sockets) socket.destroy();
        await closed;
        return 'report';
      })
      .catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(UsageNotRecordedError);
    const { event, result, cause } = failure as UsageNotRecordedError<string>;
    expect(result).toBe('report');
    expect(cause).toMatchObject({ code: 'NETWORK_ERROR' });

    const direct = createAllotmentClient({ url: allotment.url, token });
    expect((await direct.record(event)).status).toBe('ACCEPTED');
    expect((await direct.record(event)).status).toBe('DUPLICATE');
  });

  it('never retries BAD_USER_INPUT', async () => {
    let retried = 0;
    const client = createAllotmentClient({ url: allotment.url, token, onRetry: () => retried++ });
    const failure = await client.record({ accountId: CLIENT_ACCOUNT, feature: FEATURE, quantity: '-1' }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(AllotmentError);
    expect(failure).toMatchObject({ code: 'BAD_USER_INPUT', retryable: false });
    expect(retried).toBe(0);
  });
});
