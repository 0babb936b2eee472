import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HeaderMap, type ApolloServer } from '@apollo/server';
import { propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import type { GraphQLError } from 'graphql';
import { type Logger, requestScope } from '../logger.js';
import { tracer, tracingEnabled } from '../tracing.js';
import { UnauthenticatedError } from '../shared/errors.js';
import type { Authenticator, Principal } from './auth.js';
import { type Context, type ContextFactory, sanitizeRequestId } from './context.js';
import { LIMIT_ERROR_CODE, LimitExceededError, type Limits } from './limits.js';
import type { Metrics } from './metrics.js';
import type { SegmentIngestion } from '../modules/ingestion/index.js';
import { serveSegment } from './segment.js';

export interface HttpDeps {
  apollo: ApolloServer<Context>;
  buildContext: ContextFactory;
  /** Verifies the Authorization header before the body is even read. */
  authenticator: Authenticator;
  /** Body and token caps (config LIMIT_MAX_BODY_BYTES, LIMIT_MAX_TOKENS). */
  limits: Limits;
  metrics: Metrics;
  logger: Logger;
  isReady: () => Promise<{ ready: boolean; detail: Record<string, unknown> }>;
  /** `POST /ingest/segment` (R23). */
  segment: SegmentIngestion;
}

/**
 * A lean node:http handler: GraphQL goes straight to Apollo's `executeHTTPGraphQLRequest`,
 * the operational endpoints are answered inline. No framework sits on the hot path.
 */
export function createRequestHandler(deps: HttpDeps) {
  return async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // The caller's (or the gateway's) request id when it is a sane token, else a new one;
    // echoed on every response and carried by every log line written while serving it.
    const requestId = sanitizeRequestId(headerValue(req, 'x-request-id')) ?? randomUUID();
    res.setHeader('x-request-id', requestId);
    await requestScope.run({ requestId }, () =>
      tracingEnabled() ? traced(req, res, () => serve(req, res, requestId)) : serve(req, res, requestId),
    );
  };

  async function serve(req: IncomingMessage, res: ServerResponse, requestId: string): Promise<void> {
    const started = process.hrtime.bigint();
    const url = new URL(req.url ?? '/', 'http://localhost');
    const route = url.pathname;
    try {
      if (route === '/graphql') await serveGraphQL(req, res, url, deps, requestId);
      else if (route === '/ingest/segment') {
        const { authenticator, metrics, segment: ingestion } = deps;
        await serveSegment(req, res, { authenticator, ingestion, metrics, maxBodyBytes: deps.limits.config.maxBodyBytes, readBody });
      } else if (route === '/healthz' && req.method === 'GET') sendJson(res, 200, { status: 'ok' });
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
      const known = ['/graphql', '/ingest/segment', '/healthz', '/readyz', '/metrics'].includes(route) ? route : 'other';
      deps.metrics.httpDuration.observe({ route: known, status: String(res.statusCode) }, seconds);
    }
  }
}

const KNOWN_ROUTES = new Set(['/graphql', '/ingest/segment', '/healthz', '/readyz', '/metrics']);

/** A SERVER span for the request, child of the caller's W3C `traceparent` when it sent one. */
async function traced(req: IncomingMessage, res: ServerResponse, serve: () => Promise<void>): Promise<void> {
  const path = new URL(req.url ?? '/', 'http://localhost').pathname;
  const route = KNOWN_ROUTES.has(path) ? path : 'other';
  const parent = propagation.extract(ROOT_CONTEXT, req.headers);
  const attributes = { 'http.request.method': req.method ?? 'GET', 'http.route': route, 'url.path': path };
  await tracer().startActiveSpan(`${req.method} ${route}`, { kind: SpanKind.SERVER, attributes }, parent, async (span) => {
    try {
      await serve();
    } finally {
      span.setAttribute('http.response.status_code', res.statusCode);
      if (res.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
    }
  });
}

/**
 * Order matters for availability: authenticate from the header (constant work), then read
 * the body up to its cap, then count tokens up to their cap, and only then hand over to
 * Apollo (parse, validate with the limit rules, budget, execute). An unauthenticated
 * request is answered 401 before its body is read, parsed or executed, so its size buys
 * nothing; the verified principal is handed to the context so it is not verified twice.
 */
async function serveGraphQL(req: IncomingMessage, res: ServerResponse, url: URL, deps: HttpDeps, requestId: string): Promise<void> {
  const method = req.method ?? 'GET';
  let principal: Principal | undefined;
  if (method === 'POST' || method === 'GET') {
    const refused = await authenticateRequest(req, deps);
    if ('error' in refused) {
      deps.metrics.graphqlErrors.inc({ code: 'UNAUTHENTICATED' });
      // The unread body is not worth reading: close the connection instead of draining it.
      res.setHeader('connection', 'close');
      sendJson(res, 401, { errors: [{ message: refused.error.message, extensions: { code: 'UNAUTHENTICATED' } }] });
      return;
    }
    principal = refused.principal;
  }
  const headers = new HeaderMap();
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(', ') : value);
  }
  const { maxBodyBytes } = deps.limits.config;
  let body: unknown;
  if (method === 'POST') {
    const raw = await readBody(req, maxBodyBytes);
    if (raw === null) {
      deps.metrics.graphqlErrors.inc({ code: LIMIT_ERROR_CODE });
      res.setHeader('connection', 'close');
      return sendLimitError(
        res,
        new LimitExceededError(
          `Request body exceeds ${maxBodyBytes} bytes. Send a smaller request (split batches).`,
          'maxBodyBytes',
          maxBodyBytes,
          { status: 413 },
        ),
      );
    }
    try {
      body = raw.length === 0 ? undefined : JSON.parse(raw);
    } catch {
      return sendJson(res, 400, { errors: [{ message: 'Request body is not valid JSON.', extensions: { code: 'BAD_REQUEST' } }] });
    }
  }
  const query = method === 'POST' ? (body as { query?: unknown } | undefined)?.query : url.searchParams.get('query');
  if (typeof query === 'string') {
    try {
      deps.limits.assertTokenBudget(query);
    } catch (error) {
      if (!(error instanceof LimitExceededError)) throw error;
      deps.metrics.graphqlErrors.inc({ code: LIMIT_ERROR_CODE });
      return sendLimitError(res, error);
    }
  }
  const execute = () =>
    deps.apollo.executeHTTPGraphQLRequest({
      httpGraphQLRequest: { method, headers, search: url.search, body },
      context: () => deps.buildContext({ authorization: req.headers.authorization, requestId, principal }),
    });
  // The operation's span (named by observabilityPlugin once the operation is known) is
  // active while Apollo executes, so the MongoDB command spans nest under it.
  const response = tracingEnabled()
    ? await tracer().startActiveSpan('graphql.operation', async (span) => {
        try {
          return await execute();
        } finally {
          span.end();
        }
      })
    : await execute();
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

/**
 * With auth configured, a request needs a valid token; no header is refused like a bad one.
 * In open mode every caller is the development principal.
 */
async function authenticateRequest(req: IncomingMessage, deps: HttpDeps): Promise<{ principal: Principal } | { error: GraphQLError }> {
  try {
    const principal = await deps.authenticator.authenticate(headerValue(req, 'authorization'));
    if (deps.authenticator.mode !== 'open' && !principal.authenticated) return { error: new UnauthenticatedError() };
    return { principal };
  } catch (error) {
    if (error instanceof UnauthenticatedError) return { error };
    throw error;
  }
}

/** Reads the body, or null as soon as it exceeds `maxBytes` (a declared length over it is refused unread). */
function readBody(req: IncomingMessage, maxBytes: number): Promise<string | null> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) return Promise.resolve(null);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        req.off('data', onData);
        req.pause();
        resolve(null);
      } else chunks.push(chunk);
    };
    req.on('data', onData);
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function sendLimitError(res: ServerResponse, error: LimitExceededError): void {
  const { http, ...extensions } = error.extensions as { http?: { status?: number } } & Record<string, unknown>;
  sendJson(res, http?.status ?? 400, { errors: [{ message: error.message, extensions }] });
}

function sendJson(res: ServerResponse, status: number, payload: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
  res.end(JSON.stringify(payload));
}
