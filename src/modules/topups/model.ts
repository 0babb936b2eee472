import type { Micros } from '../../shared/quantity.js';

/**
 * An account's auto top-up of one credit feature (R14): when the credits left in the
 * current period fall below `below`, a PREPAID grant of `amount` is issued, once per
 * crossing. One document per (account, feature); `setAutoTopUp` replaces it.
 */
export interface AutoTopUpDoc {
  /** autoTopUpId(accountId, feature) */
  _id: string;
  accountId: string;
  feature: string;
  below: Micros;
  amount: Micros;
  /** Exact money string billed as a TOP_UP line per top-up; null when free. */
  price: string | null;
  enabled: boolean;
  updatedAt: Date;
  updatedBy: string;
}

export const autoTopUpId = (accountId: string, feature: string): string => `${accountId}\u0000${feature}`;

/**
 * The idempotency key of the n-th top-up (0-based) of a feature in the usage period
 * starting at `periodStart`: every instance derives the same key for the same crossing,
 * so the grant's unique id makes the issue happen once.
 */
export const topUpKeyPrefix = (feature: string, periodStart: Date): string => `auto-top-up:${feature}:${periodStart.toISOString()}:`;
