/**
 * Picks the database for development and tests (SPEC §3, §5):
 *
 * 1. an explicit URI (MONGODB_URI) — engine `external`;
 * 2. mongodb-memory-server (a real mongod, as a one-node replica set) — only when its
 *    binary is there without downloading (MONGOMS_SYSTEM_BINARY or the binary cache),
 *    or the download mirror answers a short probe;
 * 3. otherwise mongo-java-server, the MongoDB-wire stand-in (tools/mongo-java-server).
 *
 * `ALLOTMENT_EMBEDDED_ENGINE=mongodb-memory-server|mongo-java-server` forces 2 or 3
 * (a forced engine that fails to start is an error, not a fallback).
 *
 * mongodb-memory-server is a devDependency: it is imported lazily, and only here.
 */
import { constants as fsConstants } from 'node:fs';
import { access } from 'node:fs/promises';
import { resolve as resolvePath } from 'node:path';
import type { Logger } from '../logger.js';
import { startMongoJavaServer } from './mongo-java-server.js';

export type DatabaseEngine = 'external' | 'mongodb-memory-server' | 'mongo-java-server';

export interface ResolvedDatabase {
  uri: string;
  engine: DatabaseEngine;
  /** What this engine does not support (empty for a real mongod). */
  limitations: string[];
  /** Stops an embedded server; a no-op for `external`. Idempotent. */
  stop(): Promise<void>;
  /**
   * Resolves when the embedded server's process has exited, for whatever reason (also
   * after `stop()`); never resolves for `external`. `npm run db` exits when it does.
   */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const NEVER: ResolvedDatabase['exited'] = new Promise(() => undefined);

export interface ResolveDatabaseOptions {
  /** An explicit connection string (MONGODB_URI); wins over everything else. */
  uri?: string;
  logger: Logger;
  /** Port for an embedded server on 127.0.0.1; 0 or undefined picks a free one. */
  port?: number;
}

/** What mongo-java-server lacks; the service's design avoids all of it (SPEC §5). */
export const MONGO_JAVA_SERVER_LIMITATIONS: readonly string[] = [
  'no multi-document transactions or sessions (it reports a standalone without logicalSessionTimeoutMinutes)',
  'no TTL expiry: TTL indexes are accepted but never expire anything (store expiresAt and sweep)',
  'no partial indexes: partialFilterExpression is accepted but ignored, so a unique partial index also rejects documents outside its filter',
  'no capped collections or tailable cursors',
  'no $setWindowFields, $unionWith or $dateTrunc',
  'no pipeline-style updates',
  'serverApi client option: only connecting and ping verified (the launcher answers hello as isMaster)',
  'change streams: collection insert and delete events only; db.watch() delivers nothing; update events carry no updateDescription (and the update spec in documentKey)',
  'insert/bulkWrite results: n and insertedCount count failed documents too; use writeErrors (index, code 11000)',
];

const PROBE_TIMEOUT_MS = 1500;
const DEFAULT_MIRROR = 'https://fastdl.mongodb.org';

type ForcedEngine = 'mongodb-memory-server' | 'mongo-java-server' | undefined;

function forcedEngine(logger: Logger): ForcedEngine {
  const raw = process.env.ALLOTMENT_EMBEDDED_ENGINE?.trim();
  if (!raw || raw === 'auto') return undefined;
  if (raw === 'mongodb-memory-server' || raw === 'mongo-java-server') return raw;
  logger.warn(
    { ALLOTMENT_EMBEDDED_ENGINE: raw },
    'unknown ALLOTMENT_EMBEDDED_ENGINE (expected mongodb-memory-server or mongo-java-server); choosing automatically',
  );
  return undefined;
}

function envFalse(value: string | undefined): boolean {
  return value !== undefined && ['false', '0', 'no', 'off'].includes(value.trim().toLowerCase());
}

async function isExecutable(path: string): Promise<boolean> {
  try {
    await access(path, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

type MemoryServerModule = typeof import('mongodb-memory-server');

/** The URL mongodb-memory-server would download from, or the mirror's root if that cannot be worked out. */
async function downloadProbeUrl(mms: MemoryServerModule): Promise<{ url: string; exact: boolean }> {
  const explicit = process.env.MONGOMS_DOWNLOAD_URL?.trim();
  if (explicit) return { url: explicit, exact: true };
  try {
    // Not part of the package's root exports; a non-literal specifier keeps it optional.
    const spec = 'mongodb-memory-server-core/lib/util/MongoBinaryDownloadUrl.js';
    const mod = (await import(spec)) as {
      MongoBinaryDownloadUrl: new (opts: unknown) => { getDownloadUrl(): Promise<string> };
    };
    const options = await mms.DryMongoBinary.generateOptions();
    return { url: await new mod.MongoBinaryDownloadUrl(options).getDownloadUrl(), exact: true };
  } catch {
    const mirror = (process.env.MONGOMS_DOWNLOAD_MIRROR?.trim() || DEFAULT_MIRROR).replace(/\/+$/, '');
    return { url: `${mirror}/`, exact: false };
  }
}

/** A bounded HEAD request: does the mongod download look reachable from here? */
async function downloadReachable(mms: MemoryServerModule, logger: Logger): Promise<boolean> {
  const { url, exact } = await downloadProbeUrl(mms);
  const started = Date.now();
  try {
    const res = await fetch(url, {
      method: 'HEAD',
      redirect: exact ? 'follow' : 'manual',
      signal: AbortSignal.timeout(PROBE_TIMEOUT_MS),
    });
    // The exact archive must exist; for a bare mirror root any HTTP answer shows the network works.
    const ok = exact ? res.status < 400 : true;
    logger.debug({ url, status: res.status, ms: Date.now() - started, ok }, 'mongod download probe');
    return ok;
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).name;
    logger.debug({ url, cause, ms: Date.now() - started }, 'mongod download probe failed');
    return false;
  }
}

/**
 * Why mongodb-memory-server may be used without waiting on a download that cannot
 * succeed, or undefined when it may not.
 */
async function memoryServerBinarySource(
  mms: MemoryServerModule,
  logger: Logger,
): Promise<'system binary' | 'cached binary' | 'download' | undefined> {
  const systemBinary = process.env.MONGOMS_SYSTEM_BINARY?.trim();
  if (systemBinary) {
    if (await isExecutable(resolvePath(systemBinary))) return 'system binary';
    logger.warn({ MONGOMS_SYSTEM_BINARY: systemBinary }, 'MONGOMS_SYSTEM_BINARY is not an executable file; ignoring it');
    return undefined; // mongodb-memory-server would refuse it too
  }
  try {
    const found = await mms.DryMongoBinary.locateBinary(mms.DryMongoBinary.getEnsuredOptions());
    if (found) return 'cached binary';
  } catch (err) {
    logger.debug({ err }, 'mongodb-memory-server: locating a cached mongod failed');
  }
  if (envFalse(process.env.MONGOMS_RUNTIME_DOWNLOAD)) return undefined;
  return (await downloadReachable(mms, logger)) ? 'download' : undefined;
}

async function importMemoryServer(): Promise<MemoryServerModule> {
  try {
    return await import('mongodb-memory-server');
  } catch (err) {
    throw new Error(`mongodb-memory-server is not installed (it is a devDependency): ${(err as Error).message}`);
  }
}

async function startMemoryServer(mms: MemoryServerModule, port: number | undefined): Promise<ResolvedDatabase> {
  const replSet = await mms.MongoMemoryReplSet.create({
    replSet: { count: 1, ip: '127.0.0.1' },
    ...(port ? { instanceOpts: [{ port }] } : {}),
  });
  let stopping: Promise<void> | undefined;
  const mongod = replSet.servers[0]?.instanceInfo?.instance.mongodProcess;
  const exited: ResolvedDatabase['exited'] = mongod
    ? new Promise((resolve) => mongod.once('exit', (code, signal) => resolve({ code, signal })))
    : NEVER;
  return {
    uri: replSet.getUri(),
    engine: 'mongodb-memory-server',
    limitations: [],
    exited,
    stop: () => {
      stopping ??= replSet.stop({ doCleanup: true }).then(() => undefined);
      return stopping;
    },
  };
}

async function startJavaServer(logger: Logger, port: number | undefined): Promise<ResolvedDatabase> {
  const server = await startMongoJavaServer({ logger, ...(port !== undefined ? { port } : {}) });
  return {
    uri: server.uri,
    engine: 'mongo-java-server',
    limitations: [...MONGO_JAVA_SERVER_LIMITATIONS],
    stop: () => server.stop(),
    exited: server.exited,
  };
}

function announce(db: ResolvedDatabase, logger: Logger, detail: Record<string, unknown> = {}): ResolvedDatabase {
  logger.info({ engine: db.engine, uri: db.uri, ...detail }, `database: ${db.engine} at ${db.uri}`);
  if (db.engine === 'mongo-java-server') {
    logger.warn(
      { limitations: db.limitations },
      `database: mongo-java-server is a MongoDB-wire stand-in (mongod could not be had here); it lacks: ${db.limitations.join('; ')}`,
    );
  }
  return db;
}

export async function resolveDatabase(opts: ResolveDatabaseOptions): Promise<ResolvedDatabase> {
  const logger = opts.logger.child({ module: 'embedded-db' });
  const uri = opts.uri?.trim();
  if (uri) {
    return announce({ uri, engine: 'external', limitations: [], stop: async () => undefined, exited: NEVER }, logger);
  }

  const forced = forcedEngine(logger);
  if (forced !== 'mongo-java-server') {
    try {
      const mms = await importMemoryServer();
      const source = forced === 'mongodb-memory-server' ? 'forced' : await memoryServerBinarySource(mms, logger);
      if (source) {
        if (source === 'download') {
          logger.info('database: downloading mongod for mongodb-memory-server (once; cached afterwards)');
        }
        return announce(await startMemoryServer(mms, opts.port), logger, { binary: source });
      }
      logger.info('database: no mongod binary available and its download is unreachable; using mongo-java-server');
    } catch (err) {
      if (forced === 'mongodb-memory-server') throw err;
      logger.warn({ err }, 'database: mongodb-memory-server failed to start; falling back to mongo-java-server');
    }
  }

  return announce(await startJavaServer(opts.logger, opts.port), logger);
}
