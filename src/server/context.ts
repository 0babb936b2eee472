import { randomUUID } from 'node:crypto';
import { type Logger, requestScope } from '../logger.js';
import { createLoaders, type Loaders, type Services } from '../modules/index.js';
import type { GraphQLSchema } from 'graphql';
import type { Authenticator, Principal } from './auth.js';
import type { ErrorFormatter } from './errors.js';
import type { Metrics } from './metrics.js';

export interface Context {
  principal: Principal;
  requestId: string;
  logger: Logger;
  services: Services;
  loaders: Loaders;
}

export interface ContextRequest {
  authorization?: string | null;
  requestId?: string | null;
  /**
   * A principal the transport already verified: a WebSocket connection authenticates once
   * at connection_init and checks expiry itself, rather than re-verifying per operation.
   */
  principal?: Principal;
}

/**
 * The single context factory behind HTTP, WebSocket and subscription callbacks, so auth,
 * loaders and logging behave the same whichever way a request arrives.
 */
export function createContextFactory(deps: { authenticator: Authenticator; services: Services; logger: Logger }) {
  return async function buildContext(request: ContextRequest): Promise<Context> {
    const principal = request.principal ?? (await deps.authenticator.authenticate(request.authorization));
    const requestId = sanitizeRequestId(request.requestId) ?? randomUUID();
    return new RequestContext(principal, requestId, deps);
  };
}

/**
 * A request's context. The logger and the loaders are built on first use: a long-lived
 * subscription that never reads through them should not hold a request's worth of
 * DataLoaders and a child logger (2-3 KB each), and most checks never log. They are
 * getters on the prototype, with their state in one own object: Apollo copies the
 * context per request with `Object.assign` (own enumerable properties only), which would
 * otherwise call own getters and build both for every request; the copy shares `lazy`.
 */
class RequestContext implements Context {
  private readonly lazy: { logger?: Logger; loaders?: Loaders };

  constructor(
    readonly principal: Principal,
    readonly requestId: string,
    private readonly deps: { services: Services; logger: Logger },
  ) {
    this.lazy = {};
  }

  get services(): Services {
    return this.deps.services;
  }

  get logger(): Logger {
    // Inside an HTTP request the logger's mixin already adds the request id.
    const scoped = requestScope.getStore()?.requestId === this.requestId;
    this.lazy.logger ??= this.deps.logger.child(
      scoped ? { actor: this.principal.actor } : { requestId: this.requestId, actor: this.principal.actor },
    );
    return this.lazy.logger;
  }

  get loaders(): Loaders {
    this.lazy.loaders ??= createLoaders(this.deps.services);
    return this.lazy.loaders;
  }
}
export type ContextFactory = ReturnType<typeof createContextFactory>;

/** Request ids end up in audit entries, so only accept a short, boring token from callers. */
export function sanitizeRequestId(value: string | null | undefined): string | undefined {
  return value && /^[A-Za-z0-9._:-]{1,128}$/.test(value) ? value : undefined;
}

/** What every streaming transport (graphql-ws, SSE) is built from, like HTTP: one schema, one context factory, one error mask. */
export interface TransportDeps {
  schema: GraphQLSchema;
  authenticator: Authenticator;
  buildContext: ContextFactory;
  formatError: ErrorFormatter;
  metrics: Metrics;
  logger: Logger;
}
