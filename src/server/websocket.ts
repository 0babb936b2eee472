import type { IncomingMessage, Server } from 'node:http';
import { parse, type DocumentNode, type GraphQLSchema, type Source } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';
import type { Logger } from '../logger.js';
import type { Authenticator } from './auth.js';
import type { ContextFactory } from './context.js';
import type { ErrorFormatter } from './errors.js';
import type { Metrics } from './metrics.js';

export interface WebSocketDeps {
  httpServer: Server;
  schema: GraphQLSchema;
  authenticator: Authenticator;
  buildContext: ContextFactory;
  formatError: ErrorFormatter;
  metrics: Metrics;
  logger: Logger;
}

/**
 * Where a WebSocket client puts its token: `connectionParams.authorization` (SPEC §3),
 * `connectionParams.token` (Apollo Router's passthrough payload), or the upgrade request's
 * Authorization header (also forwarded by gateways).
 */
function authorizationOf(
  connectionParams: Readonly<Record<string, unknown>> | undefined,
  upgradeRequest: IncomingMessage,
): string | undefined {
  const fromParams = connectionParams?.authorization ?? connectionParams?.Authorization ?? connectionParams?.token;
  if (typeof fromParams === 'string' && fromParams.length > 0) {
    return /^Bearer\s/i.test(fromParams) ? fromParams : `Bearer ${fromParams}`;
  }
  return upgradeRequest.headers.authorization;
}

/**
 * graphql-ws parses every subscribe message, and the AST then lives as long as the
 * subscription: 10,000 dashboards on one query held ~110 MB of identical ASTs. Parsed
 * documents are shared instead, in a bounded LRU by query text (ASTs are immutable).
 */
export function createDocumentCache(maxDocuments = 1_000) {
  const documents = new Map<string, DocumentNode>();
  return function parseShared(source: string | Source): DocumentNode {
    const text = typeof source === 'string' ? source : source.body;
    let document = documents.get(text);
    if (document) {
      documents.delete(text); // refresh its place in the LRU
    } else {
      document = parse(text);
      if (documents.size >= maxDocuments) documents.delete(documents.keys().next().value!);
    }
    documents.set(text, document);
    return document;
  };
}

/**
 * graphql-ws on the same port and path as HTTP. Connections authenticate once through
 * `connectionParams.authorization`; each operation then gets a context from the same
 * factory as HTTP, and its errors go through the same mask.
 */
export function attachWebSocketServer(deps: WebSocketDeps) {
  const wss = new WebSocketServer({ server: deps.httpServer, path: '/graphql', maxPayload: 1024 * 1024 });
  const disposable = useServer(
    {
      schema: deps.schema,
      parse: createDocumentCache(),
      async onConnect(ctx) {
        const authorization = authorizationOf(ctx.connectionParams, ctx.extra.request);
        if (!authorization && deps.authenticator.mode !== 'open') return false;
        try {
          await deps.authenticator.authenticate(authorization);
        } catch (error) {
          deps.logger.info({ reason: (error as Error).message }, 'websocket connection refused');
          return false;
        }
        deps.metrics.websocketConnections.inc();
        return true;
      },
      onClose(ctx) {
        if (ctx.acknowledged) deps.metrics.websocketConnections.dec();
      },
      context: (ctx) =>
        deps.buildContext({
          authorization: authorizationOf(ctx.connectionParams, ctx.extra.request),
          requestId: undefined,
        }),
      onSubscribe: () => {
        deps.metrics.activeSubscriptions.inc();
      },
      onComplete: () => {
        deps.metrics.activeSubscriptions.dec();
      },
      onError: (_ctx, _id, _payload, errors) => errors.map((error) => deps.formatError(error.toJSON(), error)),
      onNext: (_ctx, _id, _payload, _args, result) =>
        result.errors ? { ...result, errors: result.errors.map((error) => deps.formatError(error.toJSON(), error)) } : result,
    },
    wss,
  );
  return {
    wss,
    /** Closes every socket with 1001 (going away) so clients reconnect to another instance. */
    async close(): Promise<void> {
      for (const client of wss.clients) client.close(1001, 'server shutting down');
      await disposable.dispose();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}
