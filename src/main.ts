import { type Config, ConfigError, loadConfig } from './config.js';
import { type RunningAllotment, startAllotment } from './app.js';
import { createLogger } from './logger.js';

/**
 * The process entry point. It alone owns SIGTERM/SIGINT (Apollo's own signal handling is
 * off): the first signal stops everything exactly once, in order, and exits 0:
 *
 * 1. `/readyz` turns 503 and the port stops accepting connections;
 * 2. in-flight HTTP requests finish (up to SHUTDOWN_GRACE_SECONDS, then their sockets are
 *    cut), idle keep-alive sockets close, WebSocket clients get 1001 "going away";
 * 3. workers (usage sweeper, alert and balance feeds) stop, both MongoDB clients close;
 * 4. an embedded database started by this process stops.
 *
 * Later signals are logged and ignored: the stop already under way finishes. Should it hang
 * anyway, a watchdog exits 1 after the grace period plus 10 s.
 */
async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      process.exit(78); // EX_CONFIG
    }
    throw error;
  }
  const logger = createLogger(config.logLevel);
  // Tracing is off unless an OTLP endpoint is configured (the standard OTel variable).
  const otlpEndpoint = process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
  const tracing = otlpEndpoint ? (await import('./tracing.js')).startOtlpTracing(otlpEndpoint) : undefined;
  if (otlpEndpoint) logger.info({ otlpEndpoint }, 'OpenTelemetry tracing on');

  // A signal during boot is remembered and honoured as soon as there is something to stop.
  let signalled: NodeJS.Signals | undefined;
  let shutdown: ((signal: NodeJS.Signals) => void) | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (signalled) {
      logger.warn({ signal, first: signalled }, 'already stopping; signal ignored');
      return;
    }
    signalled = signal;
    if (shutdown) shutdown(signal);
    else logger.info({ signal }, 'signal during start-up: stopping as soon as started');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const { resolveDatabase } = await import('./dev/embedded-db.js');
  const database = await resolveDatabase({ uri: config.mongodbUri, logger });
  logger.info({ engine: database.engine, mongodbUri: database.uri }, 'using database');

  let allotment: RunningAllotment;
  try {
    allotment = await startAllotment({ config, logger, mongodbUri: database.uri });
  } catch (error) {
    await database.stop().catch(() => undefined);
    throw error;
  }
  const running = allotment;

  shutdown = (signal) => {
    const started = Date.now();
    logger.info(
      { signal, graceMs: config.shutdownGraceMs },
      'shutting down: draining HTTP and WebSocket, then workers and database clients',
    );
    const watchdogMs = config.shutdownGraceMs + 10_000;
    const watchdog = setTimeout(() => {
      logger.error({ ms: watchdogMs }, 'stop did not finish in time; exiting 1');
      process.exit(1);
    }, watchdogMs);
    watchdog.unref();
    void (async () => {
      let code = 0;
      try {
        await running.stop();
      } catch (err) {
        code = 1;
        logger.error({ err }, 'stop failed');
      }
      await tracing?.shutdown().catch((err: unknown) => logger.warn({ err }, 'flushing traces failed'));
      try {
        await database.stop();
      } catch (err) {
        code = 1;
        logger.error({ err }, 'stopping the embedded database failed');
      }
      logger.info({ ms: Date.now() - started, code }, 'exiting');
      process.exit(code);
    })();
  };
  if (signalled) shutdown(signalled);
}

main().catch((error: unknown) => {
  console.error('Allotment failed to start:', error);
  process.exit(1);
});
