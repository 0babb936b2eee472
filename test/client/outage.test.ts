/**
 * The client through a real database outage: Allotment answers 503 SERVICE_UNAVAILABLE
 * (with Retry-After) while its database is gone, and the client keeps retrying until a
 * database is back on the same port.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAllotmentClient } from '../../src/client/index.js';
import { startMongoJavaServer, type MongoJavaServer } from '../../src/dev/mongo-java-server.js';
import { createLogger } from '../../src/logger.js';
import { signToken, startTestInstance, type TestInstance } from '../support/harness.js';

const logger = createLogger('silent');
let server: MongoJavaServer;
let replacement: MongoJavaServer | undefined;
let allotment: TestInstance;

beforeAll(async () => {
  server = await startMongoJavaServer({ logger });
  allotment = await startTestInstance({ mongodbUri: server.uri });
});
afterAll(async () => {
  await allotment?.stop().catch(() => undefined);
  await server?.stop();
  await replacement?.stop();
});

describe('the client during a database outage', () => {
  it('retries SERVICE_UNAVAILABLE, honouring Retry-After, until the database is back', async () => {
    const retries: Array<{ code: string; delayMs: number }> = [];
    const client = createAllotmentClient({
      url: allotment.url,
      token: await signToken({ scope: 'entitlements:read' }),
      retry: { attempts: 10, baseDelayMs: 50, maxDelayMs: 2_000 },
      onRetry: ({ error, delayMs }) => retries.push({ code: error.code, delayMs }),
    });
    const port = Number(new URL(server.uri).port);
    process.kill(server.pid!, 'SIGKILL');
    await server.exited;
    // Back, empty, on the same port, after the client has met the outage at least once.
    const back = (async () => {
      while (retries.length === 0) await new Promise((resolve) => setTimeout(resolve, 50));
      replacement = await startMongoJavaServer({ logger, port });
    })();

    const decision = await client.check('acct_outage', 'reports');
    await back;
    expect(decision).toMatchObject({ allowed: false, reason: 'UNKNOWN_FEATURE' });
    expect(retries.length).toBeGreaterThan(0);
    expect(new Set(retries.map((retry) => retry.code))).toEqual(new Set(['SERVICE_UNAVAILABLE']));
    // Retry-After: 1 is a floor under the jittered backoff.
    expect(Math.min(...retries.map((retry) => retry.delayMs))).toBeGreaterThanOrEqual(1_000);
  });
});
