import type { Collection } from 'mongodb';
import { FEED_INTERVAL_MS, StampedFeedCache, type StampedFeedOptions } from '../../db/stamped-feed-cache.js';
import type { Logger } from '../../logger.js';
import { compareOldestFirst, type ContractDoc } from './model.js';

/** The feed's polls are tagged, so they are never mistaken for a request's round trips. */
export const TERMS_FEED_COMMENT = 'allotment:terms-feed';

/** Between polls of the contracts feed. */
export const TERMS_FEED_INTERVAL_MS = FEED_INTERVAL_MS;

export type TermsCacheOptions = StampedFeedOptions;

/**
 * Each account's contract documents, as stored, oldest first, for the hot path (checks and
 * recordUsage), so a steady-state check sends no `find contracts` (docs/performance.md,
 * "Terms cache"). Every contract write goes through `ContractRepository.touched` after it
 * is acknowledged (or failed), before the mutation answers; other instances' writes are
 * found by the feed of `(revision, updatedAt)` stamps (db/stamped-feed-cache.ts).
 */
export class ContractTermsCache extends StampedFeedCache<ContractDoc> {
  constructor(collection: Collection<ContractDoc>, logger: Logger, options: TermsCacheOptions) {
    super(collection, logger, options, { key: 'accountId', compare: compareOldestFirst, comment: TERMS_FEED_COMMENT, name: 'terms feed' });
  }
}
