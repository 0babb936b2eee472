/**
 * `npm run db`: starts the embedded database on its own and prints its URI, so that
 * several service instances can share it (SPEC §3):
 *
 *   npm run db                       # prints MONGODB_URI=mongodb://127.0.0.1:PORT/
 *   PORT=4002 MONGODB_URI=… npm start
 *
 * `DB_PORT` picks the port (default 0: a free one); `ALLOTMENT_EMBEDDED_ENGINE` forces
 * an engine (see embedded-db.ts). Runs until SIGINT/SIGTERM, then stops the database;
 * exits 1 at once if the database process dies on its own (so a supervisor notices).
 */
import { createLogger } from '../logger.js';
import { resolveDatabase, type ResolvedDatabase } from './embedded-db.js';

function parsePort(raw: string | undefined): number {
  if (raw === undefined || raw.trim() === '') return 0;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`DB_PORT must be an integer between 0 and 65535, got "${raw}"`);
  }
  return port;
}

async function main(): Promise<void> {
  const logger = createLogger();
  const port = parsePort(process.env.DB_PORT);

  // Signal handlers come first: a supervisor may send SIGTERM the moment the URI line
  // appears, and a signal with no handler yet would kill this process and orphan the database.
  let db: ResolvedDatabase | undefined;
  let stopping: NodeJS.Signals | undefined;
  const stop = (database: ResolvedDatabase, signal: NodeJS.Signals): void => {
    logger.info({ signal, engine: database.engine }, 'stopping database');
    database.stop().then(
      () => {
        logger.info('database stopped');
        process.exit(0);
      },
      (err: unknown) => {
        logger.error({ err }, 'failed to stop database cleanly');
        process.exit(1);
      },
    );
  };
  const shutdown = (signal: NodeJS.Signals): void => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting without waiting for the database to stop');
      process.exit(1);
    }
    stopping = signal;
    if (db) stop(db, signal);
    else logger.info({ signal }, 'signal during start-up: stopping the database as soon as it is up');
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);

  // MONGODB_URI is deliberately not passed: this command exists to start an embedded database.
  const database = await resolveDatabase({ logger, port });
  db = database;
  // The embedded server's process handles are unref'd; keep this process alive ourselves.
  setInterval(() => undefined, 1 << 30);

  void database.exited.then(({ code, signal }) => {
    if (stopping) return;
    logger.error({ engine: database.engine, code, signal }, 'the database process died; exiting');
    process.stderr.write(`npm run db: the ${database.engine} process exited (${signal ?? `code ${code}`}); stopping\n`);
    process.exit(1);
  });
  if (stopping) {
    stop(database, stopping);
    return;
  }

  process.stdout.write(`MONGODB_URI=${database.uri}\n`);
  process.stdout.write(`# start instances against it with: PORT=4002 MONGODB_URI='${database.uri}' npm start\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`npm run db: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
