import type { GraphQLFormattedError } from 'graphql';
import type { ApolloServerPlugin } from '@apollo/server';
import { unwrapResolverError } from '@apollo/server/errors';
import { isDatabaseUnavailableError } from '../db/mongo.js';
import type { Logger } from '../logger.js';
import { PUBLIC_ERROR_CODES, SubscriberTooSlowError } from '../shared/errors.js';
import type { Metrics } from './metrics.js';

/** Codes graphql-js and Apollo attach to request-shape problems, safe to show as they are. */
const REQUEST_ERROR_CODES = new Set([
  'GRAPHQL_PARSE_FAILED',
  'GRAPHQL_VALIDATION_FAILED',
  'BAD_REQUEST',
  'PERSISTED_QUERY_NOT_FOUND',
  'PERSISTED_QUERY_NOT_SUPPORTED',
  'OPERATION_RESOLUTION_FAILURE',
]);

/**
 * The code of an error that is worth retrying: the database could not be reached or could
 * not serve the operation (an outage, a failover, a pool reset). Over HTTP the response is
 * a 503 with `Retry-After` when no field produced data (see `serviceUnavailablePlugin`).
 */
export const SERVICE_UNAVAILABLE = 'SERVICE_UNAVAILABLE';
/** Seconds a client or gateway should wait before retrying a SERVICE_UNAVAILABLE request. */
export const RETRY_AFTER_SECONDS = 1;

/**
 * The one error mask for HTTP and WebSocket: known domain and request errors pass through;
 * a database outage becomes SERVICE_UNAVAILABLE (retryable, driver message withheld);
 * anything else (a bug) is logged with its stack and replaced by a generic
 * INTERNAL_SERVER_ERROR, so nothing internal reaches a client.
 */
export function createErrorFormatter(deps: { logger: Logger; metrics: Metrics; exposeInternals: boolean }) {
  return function formatError(formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError {
    const code = String(formatted.extensions?.code ?? 'INTERNAL_SERVER_ERROR');
    if (PUBLIC_ERROR_CODES.has(code) || REQUEST_ERROR_CODES.has(code) || unwrapResolverError(error) instanceof SubscriberTooSlowError) {
      deps.metrics.graphqlErrors.inc({ code });
      const { stacktrace: _stack, http: _http, ...extensions } = formatted.extensions ?? {};
      return { ...formatted, extensions };
    }
    const original = unwrapResolverError(error);
    if (code === SERVICE_UNAVAILABLE || isDatabaseUnavailableError(original)) {
      deps.metrics.graphqlErrors.inc({ code: SERVICE_UNAVAILABLE });
      deps.logger.warn({ err: original, path: formatted.path }, 'database unavailable while executing GraphQL');
      return {
        message: `The database is unavailable right now; retry after ${RETRY_AFTER_SECONDS} s (send the same idempotency keys again).`,
        locations: formatted.locations,
        path: formatted.path,
        extensions: { code: SERVICE_UNAVAILABLE, retryable: true, retryAfterSeconds: RETRY_AFTER_SECONDS },
      };
    }
    deps.metrics.graphqlErrors.inc({ code: 'INTERNAL_SERVER_ERROR' });
    deps.logger.error({ err: original, path: formatted.path }, 'unexpected error while executing GraphQL');
    return {
      message: deps.exposeInternals && original instanceof Error ? `Internal error: ${original.message}` : 'Internal server error.',
      locations: formatted.locations,
      path: formatted.path,
      extensions: { code: 'INTERNAL_SERVER_ERROR' },
    };
  };
}
export type ErrorFormatter = ReturnType<typeof createErrorFormatter>;

/**
 * Gives a database outage an HTTP status a gateway understands. Apollo derives the status
 * from errors before formatting, and a driver error carries none, so this looks at the
 * formatted errors instead: when one is SERVICE_UNAVAILABLE and no top-level field produced
 * data, the answer is HTTP 503 with `Retry-After`. A response with partial data keeps its
 * 200 (its data must reach the client); the errors still say SERVICE_UNAVAILABLE.
 */
export function serviceUnavailablePlugin<TContext extends object>(): ApolloServerPlugin<TContext> {
  return {
    async requestDidStart() {
      return {
        async willSendResponse({ response }) {
          if (response.body.kind !== 'single') return;
          const { errors, data } = response.body.singleResult;
          if (!errors?.some((error) => error.extensions?.code === SERVICE_UNAVAILABLE)) return;
          const anyData = data != null && Object.values(data).some((value) => value != null);
          if (anyData) return;
          response.http.status = 503;
          response.http.headers.set('retry-after', String(RETRY_AFTER_SECONDS));
        },
      };
    },
  };
}
