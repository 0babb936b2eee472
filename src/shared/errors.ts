import { GraphQLError } from 'graphql';

/**
 * Every error a client may see is one of these. Anything else is masked as
 * INTERNAL_SERVER_ERROR by the transport, so driver errors and stack traces never leak.
 */
export type ErrorCode =
  | 'BAD_USER_INPUT'
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'IDEMPOTENCY_KEY_REUSED'
  | 'INTERNAL_SERVER_ERROR';

export const PUBLIC_ERROR_CODES: ReadonlySet<string> = new Set<ErrorCode>([
  'BAD_USER_INPUT',
  'UNAUTHENTICATED',
  'FORBIDDEN',
  'NOT_FOUND',
  'IDEMPOTENCY_KEY_REUSED',
  // graphql-js validation / parse failures keep their own codes
]);

abstract class DomainError extends GraphQLError {
  protected constructor(message: string, code: ErrorCode, httpStatus: number, extra: Record<string, unknown> = {}) {
    super(message, { extensions: { code, http: { status: httpStatus }, ...extra } });
  }
}

export class BadInputError extends DomainError {
  constructor(message: string, extra: { field?: string } & Record<string, unknown> = {}) {
    super(message, 'BAD_USER_INPUT', 400, extra);
  }
}

export class UnauthenticatedError extends DomainError {
  constructor(message = 'Authentication required: send "Authorization: Bearer <jwt>".') {
    super(message, 'UNAUTHENTICATED', 401);
  }
}

export class ForbiddenError extends DomainError {
  constructor(message: string) {
    super(message, 'FORBIDDEN', 403);
  }
}

export class NotFoundError extends DomainError {
  constructor(message: string) {
    super(message, 'NOT_FOUND', 404);
  }
}

export class IdempotencyKeyReusedError extends DomainError {
  constructor(message: string) {
    super(message, 'IDEMPOTENCY_KEY_REUSED', 409);
  }
}

/**
 * The server ended a subscription whose client fell too far behind (its bounded queue
 * overflowed). SPEC's closed list of codes has nothing closer than INTERNAL_SERVER_ERROR,
 * but the message is deliberate and safe, so the error mask lets it through unchanged.
 */
export class SubscriberTooSlowError extends DomainError {
  constructor(message: string) {
    super(message, 'INTERNAL_SERVER_ERROR', 503, { reason: 'SUBSCRIBER_TOO_SLOW' });
  }
}
