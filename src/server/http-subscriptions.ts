import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { ApolloServerPlugin } from '@apollo/server';
import {
  getOperationAST,
  parse as graphqlParse,
  validate as graphqlValidate,
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
  type GraphQLError,
  type GraphQLFormattedError,
  type GraphQLSchema,
  type Source,
} from 'graphql';
import type { Logger } from '../logger.js';
import type { Principal } from './auth.js';
import type { Context, TransportDeps } from './context.js';
import { LiveStream, subscribeLive } from './live-stream.js';
import { expiryOf } from './websocket.js';

/**
 * Subscriptions over HTTP.
 *
 * - **GraphQL over SSE** (`GET /graphql` with `accept: text/event-stream`, the graphql-sse
 *   "distinct connections" mode): Hive Gateway's default transport for a subgraph's
 *   subscriptions, and plain `EventSource`/`fetch` clients. Apollo Server has no SSE, and its
 *   CSRF check refuses the gateway's header-less GET, so these requests are answered here,
 *   before Apollo. Subscriptions only: a query or mutation on this path is refused (405), so
 *   a cross-site GET can never change anything; and credentials are bearer tokens, never
 *   cookies, so a browser cannot attach them to a forged request. Every other request,
 *   including plain GET queries, still goes through Apollo and its CSRF prevention.
 * - **POST** subscriptions are refused with a clear BAD_REQUEST (HTTP 400) by
 *   `refuseHttpSubscriptionsPlugin`, except Apollo Router's callback protocol
 *   (`extensions.subscription`), which ApolloServerPluginSubscriptionCallback serves.
 */

/** Apollo and graphql-ws check `instanceof GraphQLError` against the graphql Node resolves (its CommonJS entry); vitest may hand this module graphql's `index.mjs` copy, so errors given to them are built from theirs. */
const { GraphQLError: NodeGraphQLError } = createRequire(import.meta.url)('graphql') as typeof import('graphql');

/** How the request limits (src/server/limits.ts) plug into a transport; the defaults are graphql-js's own. */
export interface ExecutionHooks {
  parse(source: string | Source): DocumentNode;
  validate(schema: GraphQLSchema, document: DocumentNode): ReadonlyArray<GraphQLError>;
  subscribe(args: ExecutionArgs): Promise<LiveStream | ExecutionResult>;
}

export interface SseDeps extends TransportDeps {
  hooks?: ExecutionHooks;
  /** Comment lines sent while idle, so proxies keep the stream open. */
  keepAliveMs?: number;
}

const DEFAULT_HOOKS: ExecutionHooks = {
  parse: (source) => graphqlParse(source),
  validate: (schema, document) => graphqlValidate(schema, document),
  subscribe: (args) => subscribeLive(args),
};

/** Whether a request is a GraphQL-over-SSE request this module serves. */
export function isSseRequest(req: IncomingMessage): boolean {
  if (req.method !== 'GET') return false;
  const accept = req.headers.accept ?? '';
  if (!/(^|,)\s*text\/event-stream\s*(;|,|$)/i.test(accept)) return false;
  return new URL(req.url ?? '/', 'http://localhost').pathname === '/graphql';
}

/**
 * Serves one GraphQL-over-SSE request. The token is checked before the query is parsed (an
 * unauthenticated request costs nothing), and the stream ends, like a graphql-ws
 * subscription, when the token expires: a last `next` with UNAUTHENTICATED, then `complete`.
 */
export function createSseHandler(deps: SseDeps) {
  const hooks = deps.hooks ?? DEFAULT_HOOKS;
  const keepAliveMs = deps.keepAliveMs ?? 15_000;

  function refuse(res: ServerResponse, status: number, errors: GraphQLFormattedError[]): void {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
    res.end(JSON.stringify({ errors }));
  }
  const format = (error: GraphQLError): GraphQLFormattedError => deps.formatError(error.toJSON(), error);
  const formatResult = (result: ExecutionResult) => (result.errors ? { ...result, errors: result.errors.map(format) } : result);

  return async function handleSse(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const authorization = req.headers.authorization;
    let principal: Principal;
    try {
      if (!authorization && deps.authenticator.mode !== 'open') {
        throw new NodeGraphQLError('Authentication required: send "Authorization: Bearer <jwt>".', {
          extensions: { code: 'UNAUTHENTICATED' },
        });
      }
      principal = await deps.authenticator.authenticate(authorization);
    } catch (error) {
      return refuse(res, 401, [format(asGraphQLError(error, 'UNAUTHENTICATED'))]);
    }

    const params = new URL(req.url ?? '/', 'http://localhost').searchParams;
    const query = params.get('query');
    if (!query) return refuse(res, 400, [badRequest('A GraphQL-over-SSE request needs a `query` parameter.')]);
    let variableValues: Record<string, unknown> | undefined;
    try {
      const raw = params.get('variables');
      variableValues = raw ? (JSON.parse(raw) as Record<string, unknown>) : undefined;
      if (variableValues !== undefined && (typeof variableValues !== 'object' || variableValues === null || Array.isArray(variableValues)))
        throw new Error();
    } catch {
      return refuse(res, 400, [badRequest('The `variables` parameter must be a JSON object.')]);
    }
    let document: DocumentNode;
    try {
      document = hooks.parse(query);
    } catch (error) {
      return refuse(res, 400, [format(withCode(asGraphQLError(error, 'GRAPHQL_PARSE_FAILED'), 'GRAPHQL_PARSE_FAILED'))]);
    }
    const validationErrors = hooks.validate(deps.schema, document);
    if (validationErrors.length > 0) {
      return refuse(
        res,
        400,
        validationErrors.map((error) => format(withCode(error, 'GRAPHQL_VALIDATION_FAILED'))),
      );
    }
    const operationName = params.get('operationName') ?? undefined;
    const operation = getOperationAST(document, operationName);
    if (!operation) return refuse(res, 400, [badRequest('Could not determine which operation to run: pass `operationName`.')]);
    if (operation.operation !== 'subscription') {
      res.setHeader('allow', 'POST');
      return refuse(res, 405, [
        badRequest(`GraphQL over SSE serves subscriptions only; send ${operation.operation} operations as POST /graphql with a JSON body.`),
      ]);
    }

    const contextValue: Context = await deps.buildContext({ principal, requestId: headerValue(req, 'x-request-id') });
    const result = await hooks.subscribe({ schema: deps.schema, document, operationName, variableValues, contextValue });

    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.flushHeaders(); // the client learns the stream is open now, not at the first event
    const send = (event: 'next' | 'complete', data?: unknown) =>
      res.write(`event: ${event}\ndata: ${data === undefined ? '' : JSON.stringify(data)}\n\n`);

    if (!(result instanceof LiveStream)) {
      // Refused at subscribe time (FORBIDDEN, bad arguments): one result, then complete.
      send('next', formatResult(result));
      send('complete');
      res.end();
      return;
    }
    const stream = result;
    const expiry = expiryOf(principal.expiresAt);
    void expiry.expired.then(() =>
      stream.expire(() => ({
        errors: [
          new NodeGraphQLError('Token expired: the subscription ended. Subscribe again with a fresh token.', {
            extensions: { code: 'UNAUTHENTICATED' },
          }),
        ],
      })),
    );
    deps.metrics.activeSubscriptions.inc();
    const keepAlive = setInterval(() => res.write(':\n\n'), keepAliveMs);
    keepAlive.unref();
    const onClose = () => void stream.return();
    res.on('close', onClose);
    try {
      for await (const next of stream) {
        if (res.destroyed) break;
        send('next', formatResult(next));
      }
      if (!res.destroyed) send('complete');
    } catch (error) {
      if (!res.destroyed) {
        send('next', { errors: [format(asGraphQLError(error, 'INTERNAL_SERVER_ERROR'))] });
        send('complete');
      }
    } finally {
      clearInterval(keepAlive);
      expiry.cancel();
      res.off('close', onClose);
      await stream.return();
      deps.metrics.activeSubscriptions.dec();
      res.end();
    }
  };
}

/**
 * A subscription in a POST (or a GET Apollo got) cannot stream here: Apollo Server would
 * run it as a query and answer INTERNAL_SERVER_ERROR. Refuse it as BAD_REQUEST (400) naming
 * the transports that work, unless it is Apollo Router's callback protocol.
 */
export function refuseHttpSubscriptionsPlugin(): ApolloServerPlugin<Context> {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ operation, request }) {
          if (operation?.operation !== 'subscription') return;
          const callback = (request.extensions as { subscription?: { callbackUrl?: unknown } } | undefined)?.subscription;
          if (callback && typeof callback.callbackUrl === 'string') return;
          throw new NodeGraphQLError(
            'Subscriptions are not served over HTTP POST. Subscribe over graphql-ws (WebSocket on /graphql), ' +
              'over GraphQL-over-SSE (GET /graphql with "accept: text/event-stream"), or with Apollo Router\'s callback protocol.',
            { extensions: { code: 'BAD_REQUEST', http: { status: 400 } } },
          );
        },
      };
    },
  };
}

function badRequest(message: string): GraphQLFormattedError {
  return { message, extensions: { code: 'BAD_REQUEST' } };
}

function asGraphQLError(error: unknown, code: string): GraphQLError {
  if (error && typeof error === 'object' && 'toJSON' in error && 'extensions' in error) return error as GraphQLError;
  return new NodeGraphQLError(error instanceof Error ? error.message : String(error), {
    extensions: { code },
    originalError: error instanceof Error ? error : undefined,
  });
}

function withCode(error: GraphQLError, code: string): GraphQLError {
  if (error.extensions?.code) return error;
  return new NodeGraphQLError(error.message, {
    nodes: error.nodes,
    source: error.source,
    positions: error.positions,
    extensions: { ...error.extensions, code },
  });
}

function headerValue(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Routes GraphQL-over-SSE requests to `serveSse` and everything else to `next` (http.ts). */
export function withSse(
  serveSse: (req: IncomingMessage, res: ServerResponse) => Promise<void>,
  next: (req: IncomingMessage, res: ServerResponse) => unknown,
  logger: Logger,
) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    if (!isSseRequest(req)) {
      void next(req, res);
      return;
    }
    serveSse(req, res).catch((error: unknown) => {
      logger.error({ err: error }, 'GraphQL-over-SSE request failed');
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'application/json; charset=utf-8' });
        res.end(JSON.stringify({ errors: [{ message: 'Internal server error.', extensions: { code: 'INTERNAL_SERVER_ERROR' } }] }));
      } else res.destroy();
    });
  };
}
