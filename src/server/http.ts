import type { IncomingMessage, ServerResponse } from 'node:http';
import { HeaderMap, type ApolloServer } from '@apollo/server';
import type { Logger } from '../logger.js';
import type { Context, ContextFactory } from './context.js';
import type { Metrics } from './metrics.js';

/** Requests larger than this are refused before parsing: a 1,000-event batch is ~300 KB. */
const MAX_BODY_BYTES = 4 * 1024 * 1024;

export interface HttpDeps {
  apollo: ApolloServer<Context>;
  buildContext: ContextFactory;
  metrics: Metrics;
  logger: Logger;
  isReady: () => Promise<{ ready: boolean; detail: Record<string, unknown> }>;
}

/**
 * A lean node:http handler: GraphQL goes straight to Apollo's `executeHTTPGraphQLRequest`,
 * the operational endpoints are answered inline. No framework sits on the hot path.
 */
export function createRequestHandler(deps: HttpDeps) {
  return async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = process.hrtime.bigint();
    const url = new URL(req.url ?? '/', 'http://localhost');
    const route = url.pathname;
    try {
      if (route === '/graphql') await serveGraphQL(req, res, url, deps);
      else if (route === '/healthz' && req.method === 'GET') sendJson(res, 200, { status: 'ok' });
      else if (route === '/readyz' && req.method === 'GET') {
        const { ready, detail } = await deps.isReady();
        sendJson(res, ready ? 200 : 503, { status: ready ? 'ready' : 'not ready', ...detail });
      } else if (route === '/metrics' && req.method === 'GET') {
        res.writeHead(200, { 'content-type': deps.metrics.registry.contentType });
        res.end(await deps.metrics.registry.metrics());
      } else sendJson(res, 404, { error: `No route for ${req.method} ${route}` });
    } catch (error) {
      deps.logger.error({ err: error, route }, 'request failed');
      if (!res.headersSent) sendJson(res, 500, { error: 'Internal server error.' });
      else res.destroy();
    } finally {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const known = ['/graphql', '/healthz', '/readyz', '/metrics'].includes(route) ? route : 'other';
      deps.metrics.httpDuration.observe({ route: known, status: String(res.statusCode) }, seconds);
    }
  };
}

async function serveGraphQL(req: IncomingMessage, res: ServerResponse, url: URL, deps: HttpDeps): Promise<void> {
  const headers = new HeaderMap();
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(', ') : value);
  }
  let body: unknown;
  if (req.method === 'POST') {
    const raw = await readBody(req);
    if (raw === null) return sendJson(res, 413, { errors: [{ message: `Request body exceeds ${MAX_BODY_BYTES} bytes.`, extensions: { code: 'BAD_REQUEST' } }] });
    try {
      body = raw.length === 0 ? undefined : JSON.parse(raw);
    } catch {
      return sendJson(res, 400, { errors: [{ message: 'Request body is not valid JSON.', extensions: { code: 'BAD_REQUEST' } }] });
    }
  }
  const response = await deps.apollo.executeHTTPGraphQLRequest({
    httpGraphQLRequest: { method: req.method ?? 'GET', headers, search: url.search, body },
    context: () =>
      deps.buildContext({ authorization: req.headers.authorization, requestId: headerValue(req, 'x-request-id') }),
  });
  for (const [name, value] of response.headers) res.setHeader(name, value);
  res.statusCode = response.status ?? 200;
  if (response.body.kind === 'complete') {
    res.end(response.body.string);
    return;
  }
  // Incremental delivery (multipart subscriptions / @defer): stream chunks as they come.
  for await (const chunk of response.body.asyncIterator) {
    res.write(chunk);
  }
  res.end();
}

function headerValue(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function readBody(req: IncomingMessage): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) tooLarge = true;
      else chunks.push(chunk);
    });
    req.on('end', () => resolve(tooLarge ? null : Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function sendJson(res: ServerResponse, status: number, payload: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
  res.end(JSON.stringify(payload));
}
