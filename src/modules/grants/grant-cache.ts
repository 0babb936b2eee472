import type { Collection } from 'mongodb';
import { StampedFeedCache, type StampedFeedOptions } from '../../db/stamped-feed-cache.js';
import type { Logger } from '../../logger.js';
import type { GrantDoc } from './model.js';

/** The grants feed's polls are tagged, so they are never mistaken for a request's round trips. */
export const GRANTS_FEED_COMMENT = 'allotment:grants-feed';

/** Oldest issued first, as the grants are listed. */
export function compareIssued(a: GrantDoc, b: GrantDoc): number {
  return a.issuedAt.getTime() - b.issuedAt.getTime() || (a._id < b._id ? -1 : a._id > b._id ? 1 : 0);
}

/**
 * Each account's grant documents (every feature), as stored, for the hot path: the
 * `granted` part of a check's capacity and of recordUsage's guard, so a warm check or
 * recordUsage sends no `find grants` (docs/performance.md, "Terms cache"). Documents
 * only: whether a grant counts at an instant (effectiveAt, expiresAt, the void) is worked
 * out on every read, so a grant starting or expiring while cached counts exactly as read
 * from the database. Every grant write goes through `GrantRepository` which invalidates
 * its account at once (even when the write failed); other instances' writes are found by
 * the feed of `(revision, updatedAt)` stamps (db/stamped-feed-cache.ts).
 */
export class GrantCache extends StampedFeedCache<GrantDoc> {
  constructor(collection: Collection<GrantDoc>, logger: Logger, options: StampedFeedOptions) {
    super(collection, logger, options, { key: 'accountId', compare: compareIssued, comment: GRANTS_FEED_COMMENT, name: 'grants feed' });
  }
}
