/**
 * How a grant is shown: its figures as of an instant (status, burned, remaining), the
 * burn explanation of one period, and the audit trail's snapshot of it.
 */
import type { Micros } from '../../shared/quantity.js';
import type { Period } from '../../shared/periods.js';
import type { BurnLine } from './burn.js';
import type { GrantDoc, GrantStatus } from './model.js';
import { grantWindow, type GrantWindow } from './window.js';

/** A grant with its figures as of `now`. */
export interface GrantView {
  doc: GrantDoc;
  window: GrantWindow;
  /** Over every period, the current one included (R5). */
  burned: Micros;
  /** What can still be burned: amount − burned while PENDING or ACTIVE, else 0. */
  remaining: Micros;
  status: GrantStatus;
}

/** "Why was access granted": one period's burn, line by line. */
export interface BurnExplanation {
  accountId: string;
  feature: string;
  period: Period;
  included: Micros | null;
  used: Micros;
  includedBurned: Micros;
  uncovered: Micros;
  grants: GrantPeriodBurnView[];
  lines: BurnLine[];
}

/** One grant's part in one period. */
export interface GrantPeriodBurnView {
  grant: GrantView;
  availableAtStart: Micros;
  burned: Micros;
  remainingAtEnd: Micros;
}

/** One `Account.grants` listing: an account's grants, of one feature or (null) all. */
export interface GrantListing {
  accountId: string;
  feature: string | null;
  activeOnly: boolean;
}

/** A grant's status and remaining amount, given what it burned by `now`. */
export function viewOf(doc: GrantDoc, burned: Micros, now: Date): GrantView {
  const window = grantWindow(doc);
  const status: GrantStatus = doc.voidedAt
    ? 'VOIDED'
    : burned >= doc.amount
      ? 'DEPLETED'
      : window.end !== null && window.end <= now
        ? 'EXPIRED'
        : window.start > now
          ? 'PENDING'
          : 'ACTIVE';
  const remaining = status === 'ACTIVE' || status === 'PENDING' ? doc.amount - burned : 0n;
  return { doc, window, burned, remaining, status };
}

/** A grant as the audit trail shows it: the stored facts plus the window they give. */
export function auditSnapshot(doc: GrantDoc): Record<string, unknown> {
  const window = grantWindow(doc);
  return { ...doc, activeFrom: window.start, activeUntil: window.end };
}
