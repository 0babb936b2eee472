import { ensureIndexes, missingIndexes, type CollectionIndexes, type Database } from '../db/mongo.js';
import type { Logger } from '../logger.js';

export interface Readiness {
  /** What `GET /readyz` answers: never takes longer than the readiness timeout. */
  check(): Promise<{ ready: boolean; detail: Record<string, unknown> }>;
  /** From now on, answer "not ready" (the process is draining). */
  markStopping(): void;
  /** The indexes were just built (at boot): trust them for one cache period. */
  markIndexesVerified(): void;
}

export interface ReadinessOptions {
  database: Database;
  indexes: readonly CollectionIndexes[];
  logger: Logger;
  /** The whole check's budget; `/readyz` answers 503 when it runs out (default 1 s). */
  timeoutMs?: number;
  /** How long a successful index check is trusted (default 10 s). */
  indexCacheMs?: number;
}

type Outcome = { ready: boolean; detail: Record<string, unknown> };

/**
 * Readiness = the database answers a ping and every declared index exists, decided within
 * `timeoutMs` whatever the driver's own timeouts are.
 *
 * - The index check lists each collection's indexes and compares names with the declared
 *   ones. A success is cached for `indexCacheMs`; the cache is dropped as soon as the
 *   driver sees the server fail (heartbeat failure, pool cleared) or a ping fails, so a
 *   database that comes back empty is re-checked on the next probe.
 * - Missing indexes are re-created in the background (one build at a time); the probe
 *   waits for it within its budget and answers 503 (`indexes: false`) until it is done.
 */
export function createReadiness({ database, indexes, logger, timeoutMs = 1_000, indexCacheMs = 10_000 }: ReadinessOptions): Readiness {
  const log = logger.child({ module: 'readiness' });
  let stopping = false;
  let verifiedUntil = 0;
  let rebuilding: Promise<void> | undefined;

  const invalidate = (): void => {
    verifiedUntil = 0;
  };
  database.client.on('serverHeartbeatFailed', invalidate);
  database.client.on('connectionPoolCleared', invalidate);
  database.client.on('topologyClosed', invalidate);

  const rebuild = (missing: CollectionIndexes[]): Promise<void> => {
    rebuilding ??= (async () => {
      const names = missing.flatMap((spec) => spec.indexes.map((index) => `${spec.collection}.${index.name ?? JSON.stringify(index.key)}`));
      log.warn({ missing: names }, 'declared indexes are missing (database restored or restarted empty?); re-creating them');
      try {
        await ensureIndexes(database.db, missing, log);
        verifiedUntil = Date.now() + indexCacheMs;
      } catch (err) {
        log.error({ err }, 're-creating missing indexes failed; readiness stays down and retries on the next probe');
        throw err;
      } finally {
        rebuilding = undefined;
      }
    })();
    return rebuilding;
  };

  const evaluate = async (deadline: number, progress: { databaseUp: boolean }): Promise<Outcome> => {
    const databaseUp = await database.ping(Math.max(1, deadline - Date.now()));
    progress.databaseUp = databaseUp;
    if (!databaseUp) {
      invalidate();
      return { ready: false, detail: { database: 'down', indexes: false } };
    }
    if (Date.now() < verifiedUntil) return { ready: true, detail: { database: 'up', indexes: true } };
    const missing = await missingIndexes(database.db, indexes);
    if (missing.length === 0) {
      verifiedUntil = Date.now() + indexCacheMs;
      return { ready: true, detail: { database: 'up', indexes: true } };
    }
    await rebuild(missing);
    return {
      ready: true,
      detail: { database: 'up', indexes: true, recreatedIndexes: missing.reduce((n, spec) => n + spec.indexes.length, 0) },
    };
  };

  return {
    markStopping() {
      stopping = true;
    },
    markIndexesVerified() {
      verifiedUntil = Date.now() + indexCacheMs;
    },
    async check() {
      if (stopping) return { ready: false, detail: { stopping: true } };
      const deadline = Date.now() + timeoutMs;
      const progress = { databaseUp: false };
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<Outcome>((resolve) => {
        timer = setTimeout(
          () =>
            resolve({
              ready: false,
              detail: { database: progress.databaseUp ? 'up' : 'down', indexes: false, reason: `no answer within ${timeoutMs} ms` },
            }),
          timeoutMs,
        );
      });
      const checked = evaluate(deadline, progress).catch((err: unknown): Outcome => {
        invalidate();
        log.warn({ err }, 'readiness check failed');
        return { ready: false, detail: { database: 'down', indexes: false } };
      });
      try {
        return await Promise.race([checked, timedOut]);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
