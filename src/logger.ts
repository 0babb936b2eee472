import { pino, type Logger } from 'pino';

export type { Logger };

/** One root logger; modules derive children with `logger.child({ module })`. */
export function createLogger(level: string = process.env.LOG_LEVEL ?? 'info'): Logger {
  return pino({
    level,
    base: { service: 'allotment' },
    redact: { paths: ['req.headers.authorization', 'authorization', 'connectionParams.authorization'], remove: true },
  });
}
