import type { Micros } from '../../shared/quantity.js';
import type { CounterReader } from '../usage/index.js';

export type GrantKind = 'PROMOTIONAL' | 'PREPAID';
export type GrantStatus = 'PENDING' | 'ACTIVE' | 'DEPLETED' | 'EXPIRED' | 'VOIDED';

/**
 * A grant boundary that happened "now" (an issue effective at once, or a void), inside an
 * hour: `units` is how much of that hour's bucket, in the counter whose period contains
 * `at`, was already counted at that instant. It splits the hour bucket for burn, so a
 * grant issued or voided at 10:20 neither burns the usage before 10:20 nor after it (see
 * window.ts). Written once and never changed.
 */
export interface HourCut {
  at: Date;
  units: Micros;
}

/**
 * One credit grant (R5). The stored facts only: what was granted, when, by whom, and the
 * void. How much it burned is never stored; it is recomputed from the usage counters'
 * hour buckets and the grants (burn.ts), so it cannot drift from the usage it explains.
 */
export interface GrantDoc {
  /** grantId(accountId, idempotencyKey): the insert itself is the idempotency point. */
  _id: string;
  accountId: string;
  feature: string;
  kind: GrantKind;
  amount: Micros;
  /** Lower burns first. */
  priority: number;
  /** As sent, or the issue instant when omitted. */
  effectiveAt: Date;
  expiresAt: Date | null;
  /** Set when the grant took effect at issuance within an hour (see HourCut). */
  startCut: HourCut | null;
  reason: string;
  issuedBy: string;
  issuedAt: Date;
  requestId: string | null;
  idempotencyKey: string;
  /** The request's payload, canonical: a retry must match it exactly. */
  request: GrantRequestFingerprint;
  voidedAt: Date | null;
  voidedBy: string | null;
  voidReason: string | null;
  voidRequestId: string | null;
  /**
   * The void's split of its hour. Written just after `voidedAt` (see GrantService.void);
   * until it is, the void counts from the start of its hour, which is never generous.
   */
  voidCut: HourCut | null;
  /** R14: the price of an auto top-up (exact money string), billed as a TOP_UP line; absent otherwise. */
  price?: string;
  /**
   * The GrantChanged announcements still owed (R21: no event lost), written in the same
   * write as the fact: `issued` by the insert, `voided` by the void's first write. Cleared
   * once the event was published; the announcer (announcer.ts) publishes what stays owed.
   * Absent on grants stored before this field existed, and once nothing is owed.
   */
  announce?: GrantAction[];
  /** When the latest owed announcement was recorded (indexed: the announcer's query). */
  announceSince?: Date;
  /**
   * Stamped by every write (the insert and each update), with `revision` bumped by each
   * update: the grants cache's feed (grant-cache.ts). Absent on grants stored before.
   */
  updatedAt?: Date;
  revision?: number;
}

export type GrantAction = 'issued' | 'voided';

/** What an idempotent retry is compared on: the fields as the caller sent them. */
export interface GrantRequestFingerprint {
  feature: string;
  amount: string;
  kind: GrantKind;
  priority: number;
  effectiveAt: string | null;
  expiresAt: string | null;
  reason: string;
}

/** What the grants module reads of the usage module's counters (R5 burn, void cuts). */
export type GrantCounters = Pick<CounterReader, 'hourUsedAt' | 'countersFor'>;

/** Events the grants module publishes. */
export interface GrantEvents {
  /** A grant was issued or voided: capacity changed now; `grew` when it became larger. */
  GrantChanged: {
    accountId: string;
    feature: string;
    grantId: string;
    grew: boolean;
    action: GrantAction;
    /** Who issued the grant (`system:auto-top-up` for an auto top-up, R14), its amount and price. */
    issuedBy?: string;
    amount?: Micros;
    price?: string;
  };
}
