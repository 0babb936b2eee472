import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAllotment } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { startMongoJavaServer } from '../../src/dev/mongo-java-server.js';
import { createLogger } from '../../src/logger.js';
import { signToken, startTestInstance, type TestInstance } from '../support/harness.js';

let allotment: TestInstance;
beforeAll(async () => {
  allotment = await startTestInstance();
});
afterAll(() => allotment.stop());

const base = () => allotment.url.replace(/\/graphql$/, '');

describe('operational endpoints', () => {
  it('answers /healthz while the process is up', async () => {
    const response = await fetch(`${base()}/healthz`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'ok' });
  });

  it('reports ready once the database answers and indexes exist', async () => {
    const response = await fetch(`${base()}/readyz`);
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ status: 'ready', database: 'up', indexes: true });
  });

  it('exposes Prometheus metrics including GraphQL error counts', async () => {
    await allotment.graphql('{ _entities(representations: [{__typename: "Account", id: "a"}]) { __typename } }', {}, { token: null });
    const text = await (await fetch(`${base()}/metrics`)).text();
    expect(text).toContain('allotment_http_request_duration_seconds_bucket');
    expect(text).toMatch(/allotment_graphql_errors_total\{code="UNAUTHENTICATED"\} [1-9]/);
    expect(text).toContain('allotment_process_resident_memory_bytes');
  });

  it('rejects malformed JSON bodies with 400', async () => {
    const authorization = `Bearer ${await signToken()}`;
    const response = await fetch(allotment.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization },
      body: '{not json',
    });
    expect(response.status).toBe(400);
  });

  it('answers 404 for unknown routes', async () => {
    expect((await fetch(`${base()}/nope`)).status).toBe(404);
  });
});

describe('readiness follows the database', () => {
  it('turns /readyz to 503 when the database goes away', async () => {
    const logger = createLogger('silent');
    const server = await startMongoJavaServer({ logger });
    const config = loadConfig({ NODE_ENV: 'test', PORT: '0', MONGODB_DB: 'readiness', LOG_LEVEL: 'silent' });
    const instance = await startAllotment({
      config,
      logger,
      mongodbUri: server.uri,
      // 2 s, not less: the first connect to a JVM that has just started can take longer than
      // half a second on a loaded 2-core machine, and the outage is detected either way.
      clientOptions: { serverSelectionTimeoutMS: 2_000 },
    });
    try {
      const readyz = instance.url.replace(/\/graphql$/, '/readyz');
      expect((await fetch(readyz)).status).toBe(200);
      await server.stop();
      const down = await fetch(readyz);
      expect(down.status).toBe(503);
      expect(await down.json()).toMatchObject({ status: 'not ready', database: 'down' });
      expect((await fetch(readyz.replace('/readyz', '/healthz'))).status).toBe(200);
    } finally {
      await instance.httpServer.close();
      await instance.database.client.close(true).catch(() => undefined);
      await server.stop().catch(() => undefined);
    }
  });
});

describe('graceful shutdown', () => {
  it('finishes in-flight requests, then refuses new connections', async () => {
    const instance = await startTestInstance();
    // Stop only once the server holds the request: a connection that has sent nothing yet
    // is idle, and closing idle connections is exactly what a drain should do.
    const received = new Promise((resolve) => instance.httpServer.once('request', resolve));
    const inFlight = instance.graphql('{ _service { sdl } }');
    await received;
    await instance.stop();
    expect((await inFlight).data?._service.sdl).toContain('Account');
    await expect(fetch(`${instance.url.replace('/graphql', '/healthz')}`)).rejects.toThrow();
  });
});
