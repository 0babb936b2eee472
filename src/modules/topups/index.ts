/**
 * The auto top-up module (R14): an account's standing order to top up a credit feature
 * with a PREPAID grant whenever the credits left fall below a threshold. It issues the
 * grants through the grants module and reads balances through the entitlements module,
 * both as ports wired by the composition root.
 */
import type { Db } from 'mongodb';
import { TopUpRepository } from './repository.js';
import { AutoTopUpService, type TopUpDeps } from './service.js';

export function createTopUps(deps: Omit<TopUpDeps, 'repository'> & { db: Db }): AutoTopUpService {
  const { db, ...rest } = deps;
  return new AutoTopUpService({ ...rest, repository: new TopUpRepository(db) });
}

export { topUpIndexes } from './repository.js';
export { AUTO_TOP_UP_ACTOR, TOP_UP_CHECK_COMMENT, TOP_UP_REPAIR_COMMENT, type AutoTopUpService, type CreditBalance } from './service.js';
export type { AutoTopUpDoc } from './model.js';
