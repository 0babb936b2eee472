import type { IncomingMessage, Server } from 'node:http';
import { GraphQLError, parse, type DocumentNode, type ExecutionArgs, type ExecutionResult, type GraphQLSchema, type Source } from 'graphql';
import { serveGraphqlWs } from './ws-adapter.js';
import { WebSocketServer } from 'ws';
import { UnauthenticatedError } from '../shared/errors.js';
import type { Principal } from './auth.js';
import type { TransportDeps } from './context.js';
import type { Limits } from './limits.js';
import { LiveStream, subscribeLive, type StreamRegistry } from './live-stream.js';

export interface WebSocketDeps extends TransportDeps {
  httpServer: Server;
  /** Operations one connection may run at once (config `WS_MAX_SUBSCRIPTIONS_PER_CONNECTION`). */
  maxSubscriptionsPerConnection?: number;
  /** Request limits (src/server/limits.ts), applied to every operation on the socket. */
  limits?: Limits;
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

/** setTimeout's ceiling (~24.8 days); longer waits are chained. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * A promise that resolves when `expiresAt` (epoch ms) passes, and a `cancel` that clears
 * its timer. Without `expiresAt` (open mode) it never resolves.
 */
export function expiryOf(expiresAt: number | undefined): { expired: Promise<void>; hasExpired(): boolean; cancel(): void } {
  let timer: NodeJS.Timeout | undefined;
  let fired = false;
  let resolve!: () => void;
  const expired = new Promise<void>((done) => (resolve = done));
  const arm = () => {
    if (expiresAt === undefined) return;
    const wait = expiresAt - Date.now();
    if (wait <= 0) {
      fired = true;
      resolve();
      return;
    }
    timer = setTimeout(arm, Math.min(wait, MAX_TIMER_MS));
    timer.unref();
  };
  arm();
  return {
    expired,
    hasExpired: () => fired || (expiresAt !== undefined && Date.now() >= expiresAt),
    cancel: () => clearTimeout(timer),
  };
}

/**
 * A refused operation runs this document instead of the client's, which is never parsed:
 * `onOperation` then swaps its result for the refusal. The refusal reaches the client as a
 * `next` result carrying the error, then `complete`. graphql-ws's own `error` message would
 * be simpler, but gateways (Hive Gateway) turn an upstream `error` message into a masked
 * "Unexpected error", so the client would never learn it was UNAUTHENTICATED.
 */
const REFUSED_DOCUMENT = parse('query Refused { __typename }');

/** Execution args that run nothing of the client's, tagged with the errors to answer. */
function refusal(schema: GraphQLSchema, refusals: WeakMap<object, GraphQLError[]>, error: GraphQLError): ExecutionArgs {
  const contextValue = {};
  refusals.set(contextValue, [error]);
  return { schema, document: REFUSED_DOCUMENT, contextValue, variableValues: {} };
}

const TOKEN_EXPIRED_MESSAGE = 'Token expired: the subscription ended. Reconnect with a fresh token and subscribe again.';
const tokenExpired = (): ExecutionResult => ({ errors: [new UnauthenticatedError(TOKEN_EXPIRED_MESSAGE)] });

/** What a connection learnt at connection_init, for its operations. */
interface ConnectionState {
  /** The verified caller; absent when the connection is refused per operation. */
  principal?: Principal;
  /** Why every operation on this connection is UNAUTHENTICATED (no or a bad token). */
  refusal?: string;
  expiry: ReturnType<typeof expiryOf>;
  /** Operation ids counted in `active_subscriptions`, so each is counted down exactly once. */
  streaming: Set<string>;
  /** Its open streams, ended together when the token expires (one reaction per connection, not per stream). */
  streams: StreamRegistry;
}

/**
 * graphql-ws on the same port and path as HTTP. Connections authenticate once through
 * `connectionParams.authorization`; each operation then gets a context from the same
 * factory as HTTP, and its errors go through the same mask.
 *
 * Auth (docs/subscriptions.md):
 * - Every connection is acknowledged, so that gateways multiplexing their clients onto it
 *   can deliver errors. Without a valid token (when auth is configured) every subscribe is
 *   answered with a result carrying UNAUTHENTICATED, then `complete`, before the query is
 *   even parsed: nothing of it is executed.
 * - When the connection's token expires, each of its subscriptions gets a last result with
 *   an UNAUTHENTICATED error and completes; later subscribes are refused the same way. The
 *   socket stays up, and the client reconnects with a fresh token.
 * - At most `maxSubscriptionsPerConnection` operations run at once on one connection; one
 *   more is refused with BAD_REQUEST, the others keep streaming.
 */
export function attachWebSocketServer(deps: WebSocketDeps) {
  const wss = new WebSocketServer({ server: deps.httpServer, path: '/graphql', maxPayload: 1024 * 1024 });
  const maxOperations = deps.maxSubscriptionsPerConnection ?? 1000;
  const connections = new WeakMap<object, ConnectionState>();
  const refusals = new WeakMap<object, GraphQLError[]>();
  const stateOf = (ctx: object): ConnectionState => {
    const state = connections.get(ctx);
    if (!state) throw new Error('graphql-ws operation on a connection that was never initialised');
    return state;
  };
  const disposable = serveGraphqlWs(
    {
      schema: deps.schema,
      // The same request limits as HTTP (tokens, validation rules, operation budget).
      ...(deps.limits ? deps.limits.webSocketOptions(createDocumentCache()) : { parse: createDocumentCache(), subscribe: subscribeLive }),
      async onConnect(ctx) {
        const authorization = authorizationOf(ctx.connectionParams, ctx.extra.request);
        const state: ConnectionState = { expiry: expiryOf(undefined), streaming: new Set(), streams: new Set() };
        if (!authorization && deps.authenticator.mode !== 'open') {
          state.refusal = 'Authentication required: send connectionParams: { authorization: "Bearer <jwt>" } when connecting.';
        } else {
          try {
            state.principal = await deps.authenticator.authenticate(authorization);
            state.expiry = expiryOf(state.principal.expiresAt);
          } catch (error) {
            deps.logger.info({ reason: (error as Error).message }, 'websocket connection unauthenticated: its operations will be refused');
            state.refusal = (error as Error).message;
          }
        }
        const streams = state.streams;
        void state.expiry.expired.then(() => {
          for (const stream of [...streams]) stream.expire(tokenExpired);
        });
        connections.set(ctx, state);
        deps.metrics.websocketConnections.inc();
        return true;
      },
      onClose(ctx) {
        if (ctx.acknowledged) deps.metrics.websocketConnections.dec();
        const state = connections.get(ctx);
        if (!state) return;
        state.expiry.cancel();
        // Operations graphql-ws did not complete (a send failed on a dying socket).
        deps.metrics.activeSubscriptions.dec(state.streaming.size);
        state.streaming.clear();
        state.streams.clear();
        connections.delete(ctx);
      },
      onSubscribe(ctx) {
        const state = stateOf(ctx);
        if (state.refusal !== undefined) return refusal(deps.schema, refusals, new UnauthenticatedError(state.refusal));
        if (state.expiry.hasExpired()) return refusal(deps.schema, refusals, new UnauthenticatedError(TOKEN_EXPIRED_MESSAGE));
        // graphql-ws has already registered this operation in ctx.subscriptions.
        if (Object.keys(ctx.subscriptions).length > maxOperations) {
          return refusal(
            deps.schema,
            refusals,
            new GraphQLError(
              `Too many operations on this connection: at most ${maxOperations} may run at once. Complete one, or open another connection.`,
              { extensions: { code: 'BAD_REQUEST', limit: maxOperations } },
            ),
          );
        }
        return undefined;
      },
      context: (ctx) =>
        deps.buildContext({
          principal: stateOf(ctx).principal,
          authorization: authorizationOf(ctx.connectionParams, ctx.extra.request),
          requestId: undefined,
        }),
      onOperation(ctx, id, _payload, args, result) {
        const refused = refusals.get(args.contextValue as object);
        if (refused) return { errors: refused };
        if (!isAsyncIterable(result)) return undefined;
        const state = stateOf(ctx);
        state.streaming.add(id);
        deps.metrics.activeSubscriptions.inc();
        // Every stream is a LiveStream: `subscribe` is subscribeLive, with or without the limits.
        if (!(result instanceof LiveStream)) throw new Error('a subscription stream was not built by subscribeLive');
        result.register(state.streams);
        // Expired while its context was being built: the reaction above has already run.
        if (state.expiry.hasExpired()) result.expire(tokenExpired);
        return undefined;
      },
      onComplete(ctx, id) {
        const state = connections.get(ctx);
        if (state?.streaming.delete(id)) deps.metrics.activeSubscriptions.dec();
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

function isAsyncIterable(value: unknown): value is AsyncIterable<ExecutionResult> {
  return typeof value === 'object' && value !== null && typeof (value as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function';
}
