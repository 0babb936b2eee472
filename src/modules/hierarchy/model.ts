import type { Micros } from '../../shared/quantity.js';

/** R13: depth is at most 5 accounts from a root down to the deepest descendant, both counted. */
export const MAX_DEPTH = 5;

/**
 * One account's place in the hierarchy (`account_hierarchy`): its parent, and the caps on
 * its draw from pools (setAccountLimit). Accounts never placed have no document: no
 * parent, no limits.
 */
export interface HierarchyDoc {
  /** The account id. */
  _id: string;
  parentId: string | null;
  /** Per feature: the most this account may draw from a pool per period, in micro-units. */
  limits: Record<string, Micros>;
  /** The hierarchy revision that last moved this account. */
  movedAt: number;
  updatedAt: Date;
}

/** A move decided at `rev` and possibly not yet applied to its account's document. */
export interface PendingMove {
  rev: number;
  accountId: string;
  parentId: string | null;
  previousParentId: string | null;
  actor: string;
  requestId: string | null;
  at: Date;
}

/**
 * The single document every move is serialised through (`_id: '\\u0000revision'`): a move is
 * decided by a compare-and-set from the revision it validated against, and parked here
 * as `pending` until applied. Limits bump `rev` too, so caches keyed by it stay exact.
 */
export interface RevisionDoc {
  _id: string;
  rev: number;
  pending: PendingMove | null;
}

/** What the check path needs of one account: ancestors nearest first, and its caps. */
export interface Lineage {
  ancestors: string[];
  limits: Record<string, Micros>;
}

/** Published after a move is applied: new usage follows the new parent. */
export interface HierarchyChanged {
  accountId: string;
  parentId: string | null;
  previousParentId: string | null;
  rev: number;
}

export interface HierarchyEvents {
  HierarchyChanged: HierarchyChanged;
}
