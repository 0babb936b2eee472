import { AsyncLocalStorage } from 'node:async_hooks';
import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * The request a piece of work belongs to. The HTTP handler runs each request inside it, so
 * every log line written while serving the request (errors included, from any module's
 * logger) carries its `requestId`, the value echoed in `x-request-id`.
 */
export const requestScope = new AsyncLocalStorage<{ requestId: string }>();

/** One root logger; modules derive children with `logger.child({ module })`. */
export function createLogger(level: string = process.env.LOG_LEVEL ?? 'info', destination?: pino.DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    level,
    base: { service: 'allotment' },
    redact: { paths: ['req.headers.authorization', 'authorization', 'connectionParams.authorization'], remove: true },
    mixin: () => {
      const scope = requestScope.getStore();
      return scope ? { requestId: scope.requestId } : {};
    },
  };
  return destination ? pino(options, destination) : pino(options);
}
