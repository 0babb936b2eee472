/**
 * The hierarchy module (R13): account parents and children, the caps on members' draws
 * from pools (setAccountLimit), and the cached lineage the check path reads to find the
 * nearest pooled ancestor. It publishes HierarchyChanged after every move.
 */
import type { Db } from 'mongodb';
import type { Logger } from '../../logger.js';
import type { EventPublisher } from '../../shared/events.js';
import type { AuditLog } from '../audit/index.js';
import type { HierarchyEvents } from './model.js';
import { HierarchyRepository } from './repository.js';
import { HierarchyService } from './service.js';

export function createHierarchy(deps: {
  db: Db;
  audit: AuditLog;
  events: EventPublisher<HierarchyEvents>;
  logger: Logger;
  /** The lineage cache (docs/performance.md, "Terms cache"). */
  cache?: { maxEntries: number; maxStalenessMs: number };
}): HierarchyService {
  return new HierarchyService({ ...deps, repository: new HierarchyRepository(deps.db) });
}

export type { HierarchyService } from './service.js';
export { hierarchyIndexes } from './repository.js';
export { MAX_DEPTH, type HierarchyChanged, type HierarchyEvents, type Lineage } from './model.js';
