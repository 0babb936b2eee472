/**
 * A real database outage: a mongo-java-server of this test's own is frozen (SIGSTOP),
 * killed (SIGKILL), and replaced by a new, empty one on the same port.
 */
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { missingIndexes } from '../../src/db/mongo.js';
import { startMongoJavaServer, type MongoJavaServer } from '../../src/dev/mongo-java-server.js';
import { createLogger } from '../../src/logger.js';
import { moduleIndexes } from '../../src/modules/index.js';
import { signToken, startTestInstance, type TestInstance } from '../support/harness.js';

const logger = createLogger('silent');
let server: MongoJavaServer;
let replacement: MongoJavaServer | undefined;
let allotment: TestInstance;
let readyz: string;

beforeAll(async () => {
  server = await startMongoJavaServer({ logger });
  // Default driver options (serverSelectionTimeoutMS from config), unlike the shared harness database.
  allotment = await startTestInstance({ mongodbUri: server.uri });
  readyz = allotment.url.replace(/\/graphql$/, '/readyz');
});
afterAll(async () => {
  try {
    if (server.pid) process.kill(server.pid, 'SIGCONT');
  } catch {
    // already gone
  }
  await allotment.stop().catch(() => undefined);
  await server.stop();
  await replacement?.stop();
});

async function timed<T>(run: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = Date.now();
  const value = await run();
  return { value, ms: Date.now() - started };
}

const FEATURES = '{ features { key } }';

describe('database outage', () => {
  it('is ready, with every declared index, while the database is up', async () => {
    const response = await fetch(readyz);
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ status: 'ready', database: 'up', indexes: true });
  });

  it('answers /readyz 503 within its 1 s budget while the database hangs (SIGSTOP)', async () => {
    process.kill(server.pid!, 'SIGSTOP');
    try {
      // SIGSTOP is asynchronous: on a loaded machine the server's threads may answer one more
      // request before they stop. Probe once the kernel says the process is stopped.
      await expect.poll(() => processState(server.pid!), { timeout: 5_000, interval: 20 }).toBe('T');
      const _token = await signToken();
      const { value: response, ms } = await timed(() => fetch(readyz));
      expect(response.status).toBe(503);
      expect(await response.json()).toMatchObject({ status: 'not ready', database: 'down' });
      expect(ms).toBeLessThan(1_500);
    } finally {
      process.kill(server.pid!, 'SIGCONT');
    }
    // Thawed, it is ready again.
    await expect.poll(async () => (await fetch(readyz)).status, { timeout: 10_000, interval: 200 }).toBe(200);
  });

  it('answers /readyz 503 within 1 s and GraphQL 503 SERVICE_UNAVAILABLE fast when the database is gone (SIGKILL)', async () => {
    process.kill(server.pid!, 'SIGKILL');
    await server.exited;

    const { value: ready, ms: readyMs } = await timed(() => fetch(readyz));
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ status: 'not ready', database: 'down' });
    expect(readyMs).toBeLessThan(1_500);

    const token = await signToken();
    const { value: response, ms } = await timed(() =>
      fetch(allotment.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ query: FEATURES }),
      }),
    );
    // A gateway sees a retryable HTTP status, not a 200 with a masked internal error.
    expect(response.status).toBe(503);
    expect(response.headers.get('retry-after')).toBe('1');
    const body = (await response.json()) as { data?: unknown; errors: Array<{ message: string; extensions: Record<string, unknown> }> };
    expect(body.data ?? null).toBeNull();
    expect(body.errors).toHaveLength(1);
    expect(body.errors[0]!.extensions).toMatchObject({ code: 'SERVICE_UNAVAILABLE', retryable: true });
    expect(body.errors[0]!.message).toMatch(/database is unavailable/);
    expect(body.errors[0]!.message).not.toMatch(/ECONNREFUSED|selection|127\.0\.0\.1/i);
    // Fails after server selection (2 s by default), not the driver's 30 s or a hang.
    expect(ms).toBeLessThan(3_500);

    const metrics = await (await fetch(readyz.replace('/readyz', '/metrics'))).text();
    expect(metrics).toMatch(/allotment_graphql_errors_total\{code="SERVICE_UNAVAILABLE"\} [1-9]/);
  });

  it('turns ready again only once the indexes exist on the database that came back (empty, same port)', async () => {
    const port = Number(new URL(server.uri).port);
    replacement = await startMongoJavaServer({ logger, port });
    // The new server starts empty: the indexes built at boot are gone.
    expect((await missingIndexes(allotment.database.db, moduleIndexes)).length).toBeGreaterThan(0);

    await expect.poll(async () => (await fetch(readyz)).status, { timeout: 15_000, interval: 250 }).toBe(200);
    // Ready means the declared indexes really exist (re-created), not a flag remembered from boot.
    expect(await missingIndexes(allotment.database.db, moduleIndexes)).toEqual([]);
    expect(await (await fetch(readyz)).json()).toMatchObject({ status: 'ready', database: 'up', indexes: true });

    const response = await allotment.graphql(FEATURES);
    expect(response.status).toBe(200);
    expect(response.data).toEqual({ features: [] });
  });
});

/** The process's state letter from /proc (Linux): 'T' once a SIGSTOP has taken effect. */
async function processState(pid: number): Promise<string> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
}
