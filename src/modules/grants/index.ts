/**
 * The grants module (R5): credit grants issued and voided by internal tools, their burn
 * order, and the `granted` part of capacity that checks and the HARD guard both read.
 * It publishes GrantChanged when capacity changes now.
 */
import type { Db } from 'mongodb';
import type { StampedFeedOptions } from '../../db/stamped-feed-cache.js';
import { GrantAnnouncer } from './announcer.js';
import { GrantCache } from './grant-cache.js';
import { GRANTS, GrantRepository } from './repository.js';
import { GrantService, type GrantServiceDeps } from './service.js';

/**
 * The service, the announcer that publishes the GrantChanged events still owed (a
 * background worker), and the grants cache of the hot path (grant-cache.ts; its feed is a
 * background worker too), which every grant write of this instance invalidates.
 */
export function createGrants(
  deps: Omit<GrantServiceDeps, 'repository'> & { db: Db; announceIntervalMs?: number; cache?: StampedFeedOptions },
) {
  const { db, announceIntervalMs = 1_000, cache: cacheOptions = { maxEntries: 0, maxStalenessMs: 0 }, ...rest } = deps;
  const cache = new GrantCache(db.collection(GRANTS), rest.logger, cacheOptions);
  const repository = new GrantRepository(db, cache);
  const grants = new GrantService({ ...rest, repository });
  const announcer = new GrantAnnouncer({
    repository,
    reannounce: (grant, action) => grants.reannounce(grant, action),
    voidDurationMs: grants.voidDurationMs,
    logger: rest.logger,
    intervalMs: announceIntervalMs,
  });
  return { grants, announcer, cache };
}

export { grantIndexes } from './repository.js';
export { type GrantCache, GRANTS_FEED_COMMENT } from './grant-cache.js';
export { GRANT_ANNOUNCER_COMMENT, type GrantAnnouncer } from './announcer.js';
export type { GrantService, GrantServiceDeps, GrantView, BurnExplanation, GrantPeriodBurnView } from './service.js';
export type { GrantCounters, GrantEvents } from './model.js';
export type { BurnLine } from './burn.js';
export { createGrantLoaders, type GrantLoaders } from './loaders.js';
