import type { GraphQLFormattedError } from 'graphql';
import { unwrapResolverError } from '@apollo/server/errors';
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
 * The one error mask for HTTP and WebSocket: known domain and request errors pass through;
 * anything else (a driver error, a bug) is logged with its stack and replaced by a generic
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
    deps.metrics.graphqlErrors.inc({ code: 'INTERNAL_SERVER_ERROR' });
    const original = unwrapResolverError(error);
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
