import { ConfigError, loadConfig } from './config.js';
import { startAllotment } from './app.js';
import { createLogger } from './logger.js';

async function main(): Promise<void> {
  let config;
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
  const { resolveDatabase } = await import('./dev/embedded-db.js');
  const database = await resolveDatabase({ uri: config.mongodbUri, logger });
  logger.info({ engine: database.engine, mongodbUri: database.uri }, 'using database');

  const allotment = await startAllotment({ config, logger, mongodbUri: database.uri });

  let shuttingDown = false;
  const shutdown = async (signal: string) => {
    if (shuttingDown) return;
    shuttingDown = true;
    logger.info({ signal }, 'shutting down: draining HTTP and WebSocket');
    const forceExit = setTimeout(() => {
      logger.error('drain took longer than 20 s; exiting');
      process.exit(1);
    }, 20_000);
    forceExit.unref();
    await allotment.stop();
    await database.stop();
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
}

main().catch((error: unknown) => {
  console.error('Allotment failed to start:', error);
  process.exit(1);
});
