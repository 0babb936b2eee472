import { MongoClient, type Db, type IndexDescription, type MongoClientOptions } from 'mongodb';
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

export async function connectDatabase({ uri, dbName, logger, clientOptions }: ConnectOptions): Promise<Database> {
  const client = new MongoClient(uri, {
    // Counters and quantities are Int64 micro-units; bigint keeps them exact in JS.
    useBigInt64: true,
    ignoreUndefined: true,
    serverSelectionTimeoutMS: 5_000,
    appName: 'allotment',
    ...clientOptions,
  });
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

export async function ensureIndexes(db: Db, specs: readonly CollectionIndexes[], logger: Logger): Promise<void> {
  for (const spec of specs) {
    if (spec.indexes.length === 0) continue;
    await db.collection(spec.collection).createIndexes(spec.indexes);
  }
  logger.info({ collections: specs.map((s) => s.collection) }, 'indexes ensured');
}

/** MongoDB's duplicate-key error. Checked by code alone: the stand-in's messages differ. */
export function isDuplicateKeyError(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === 11000;
}
