/**
 * The grants module (R5): credit grants issued and voided by internal tools, their burn
 * order, and the `granted` part of capacity that checks and the HARD guard both read.
 * It publishes GrantChanged when capacity changes now.
 */
import type { Db } from 'mongodb';
import { GrantAnnouncer } from './announcer.js';
import { GrantRepository } from './repository.js';
import { GrantService, type GrantServiceDeps } from './service.js';

/** The service, and the announcer that publishes the GrantChanged events still owed (a background worker). */
export function createGrants(deps: Omit<GrantServiceDeps, 'repository'> & { db: Db; announceIntervalMs?: number }) {
  const { db, announceIntervalMs = 1_000, ...rest } = deps;
  const repository = new GrantRepository(db);
  const grants = new GrantService({ ...rest, repository });
  const announcer = new GrantAnnouncer({
    repository,
    reannounce: (grant, action) => grants.reannounce(grant, action),
    voidDurationMs: grants.voidDurationMs,
    logger: rest.logger,
    intervalMs: announceIntervalMs,
  });
  return { grants, announcer };
}

export { grantIndexes } from './repository.js';
export { GRANT_ANNOUNCER_COMMENT, type GrantAnnouncer } from './announcer.js';
export type { GrantService, GrantServiceDeps, GrantView, BurnExplanation, GrantPeriodBurnView } from './service.js';
export type { GrantCounters, GrantEvents } from './model.js';
export type { BurnLine } from './burn.js';
export { createGrantLoaders, type GrantLoaders } from './loaders.js';
