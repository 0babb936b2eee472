/**
 * The grants module (R5): credit grants issued and voided by internal tools, their burn
 * order, and the `granted` part of capacity that checks and the HARD guard both read.
 * It publishes GrantChanged when capacity changes now.
 */
import type { Db } from 'mongodb';
import { GrantRepository } from './repository.js';
import { GrantService, type GrantServiceDeps } from './service.js';

export function createGrants(deps: Omit<GrantServiceDeps, 'repository'> & { db: Db }): GrantService {
  const { db, ...rest } = deps;
  return new GrantService({ ...rest, repository: new GrantRepository(db) });
}

export { grantIndexes } from './repository.js';
export type { GrantService, GrantServiceDeps, GrantView, BurnExplanation, GrantPeriodBurnView } from './service.js';
export type { GrantCounters, GrantEvents } from './model.js';
export type { BurnLine } from './burn.js';
export { createGrantLoaders, type GrantLoaders } from './loaders.js';
