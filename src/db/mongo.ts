import {
  MongoClient,
  MongoError,
  MongoNetworkError,
  MongoNotConnectedError,
  MongoOperationTimeoutError,
  MongoServerSelectionError,
  MongoTopologyClosedError,
  type Collection,
  type Db,
  type Document,
  type IndexDescription,
  type MongoClientOptions,
  type OptionalUnlessRequiredId,
} from 'mongodb';
import { tracingEnabled } from '../tracing.js';
import { traceCommands } from './tracing.js';
import type { Logger } from '../logger.js';

/**
 * The one place that owns the MongoDB client. Modules declare the indexes their
 * repositories rely on; `ensureIndexes` creates them idempotently at start-up.
 *
 * Deliberately absent: sessions and multi-document transactions (SPEC §5). Every
 * invariant in this service is kept by single-document atomic updates plus unique indexes,
 * so the same code runs on a standalone mongod, a replica set, or the embedded stand-in.
 */
export interface CollectionIndexes {
  collection: string;
  indexes: IndexDescription[];
}

export interface Database {
  client: MongoClient;
  db: Db;
  /** True when the server answers a ping within `timeoutMs`. */
  ping(timeoutMs?: number): Promise<boolean>;
  close(): Promise<void>;
}

export interface ConnectOptions {
  uri: string;
  dbName: string;
  logger: Logger;
  /** Extra driver options, e.g. `monitorCommands` in tests that count round trips. */
  clientOptions?: MongoClientOptions;
}

/**
 * How long an operation waits for a reachable server before failing. Short on purpose:
 * during an outage a request should fail fast with a retryable error (SERVICE_UNAVAILABLE,
 * HTTP 503) rather than hold a connection for the driver's default 30 s. Configurable
 * with MONGODB_SERVER_SELECTION_TIMEOUT_MS.
 */
export const DEFAULT_SERVER_SELECTION_TIMEOUT_MS = 2_000;

export async function connectDatabase({ uri, dbName, logger, clientOptions }: ConnectOptions): Promise<Database> {
  const client = new MongoClient(uri, {
    // Counters and quantities are Int64 micro-units; bigint keeps them exact in JS.
    useBigInt64: true,
    ignoreUndefined: true,
    serverSelectionTimeoutMS: DEFAULT_SERVER_SELECTION_TIMEOUT_MS,
    appName: 'allotment',
    ...clientOptions,
    ...(tracingEnabled() ? { monitorCommands: true } : {}),
  });
  if (tracingEnabled()) traceCommands(client);
  await client.connect();
  const db = client.db(dbName);
  logger.info({ dbName }, 'connected to MongoDB');
  return {
    client,
    db,
    async ping(timeoutMs = 1_000) {
      try {
        await db.command({ ping: 1 }, { timeoutMS: timeoutMs });
        return true;
      } catch {
        return false;
      }
    },
    close: () => client.close(),
  };
}

/** The name MongoDB (and the driver's createIndexes) gives an index without an explicit one. */
export function indexName(index: IndexDescription): string {
  if (index.name) return index.name;
  const key = index.key instanceof Map ? Array.from(index.key) : Object.entries(index.key);
  return key.flat().join('_');
}

/**
 * The declared indexes the database does not have, per collection (a collection that does
 * not exist yet has none of them). Used by readiness: a database restored from a backup or
 * restarted empty must not be called ready on the strength of an index build at boot.
 */
export async function missingIndexes(db: Db, specs: readonly CollectionIndexes[]): Promise<CollectionIndexes[]> {
  const checks = specs
    .filter((spec) => spec.indexes.length > 0)
    .map(async (spec): Promise<CollectionIndexes | undefined> => {
      let present: Set<string>;
      try {
        const existing = await db.collection(spec.collection).listIndexes().toArray();
        present = new Set(existing.map((index) => String(index.name)));
      } catch (error) {
        if ((error as { code?: unknown }).code !== 26) throw error; // NamespaceNotFound
        present = new Set();
      }
      const missing = spec.indexes.filter((index) => !present.has(indexName(index)));
      return missing.length > 0 ? { collection: spec.collection, indexes: missing } : undefined;
    });
  return (await Promise.all(checks)).filter((spec): spec is CollectionIndexes => spec !== undefined);
}

export async function ensureIndexes(db: Db, specs: readonly CollectionIndexes[], logger: Logger): Promise<void> {
  for (const spec of specs) {
    if (spec.indexes.length === 0) continue;
    await db.collection(spec.collection).createIndexes(spec.indexes);
  }
  logger.info({ collections: specs.map((s) => s.collection) }, 'indexes ensured');
}

/** Server error codes that mean "not reachable or not able to serve right now". */
const UNAVAILABLE_CODES = new Set([
  6, // HostUnreachable
  7, // HostNotFound
  89, // NetworkTimeout
  91, // ShutdownInProgress
  189, // PrimarySteppedDown
  9001, // SocketException
  10107, // NotWritablePrimary
  11600, // InterruptedAtShutdown
  11602, // InterruptedDueToReplStateChange
  13435, // NotPrimaryNoSecondaryOk
  13436, // NotPrimaryOrSecondary
]);

/**
 * True when an error means the database could not be reached or could not serve the
 * operation right now (no server selectable, connection lost, pool cleared, client closed,
 * a primary stepping down, a time limit hit), as opposed to a bug or a bad request. Such a
 * request is worth retrying, so it is answered as SERVICE_UNAVAILABLE instead of masked as
 * an internal error. Follows `cause` a few levels for errors wrapped on the way up.
 */
export function isDatabaseUnavailableError(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    if (
      current instanceof MongoServerSelectionError ||
      current instanceof MongoNetworkError ||
      current instanceof MongoTopologyClosedError ||
      current instanceof MongoNotConnectedError ||
      current instanceof MongoOperationTimeoutError
    ) {
      return true;
    }
    if (current instanceof MongoError) {
      if (current.hasErrorLabel('RetryableWriteError') || current.hasErrorLabel('ResetPool')) return true;
      if (typeof current.code === 'number' && UNAVAILABLE_CODES.has(current.code)) return true;
    }
    current = current.cause;
  }
  return false;
}

/** MongoDB's duplicate-key error. Checked by code alone: the stand-in's messages differ. */
export function isDuplicateKeyError(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === 11000;
}

/**
 * Inserts `doc`; false when its `_id` (or another unique key) exists already. Where an id
 * is derived from the request or the event, the insert is the exactly-once decision: the
 * loser of a race, a retry or a recovery replay gets false and does nothing more.
 */
export async function insertUnlessPresent<T extends Document>(
  collection: Collection<T>,
  doc: OptionalUnlessRequiredId<T>,
): Promise<boolean> {
  try {
    await collection.insertOne(doc);
    return true;
  } catch (error) {
    if (isDuplicateKeyError(error)) return false;
    throw error;
  }
}
