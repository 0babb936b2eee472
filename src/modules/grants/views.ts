/**
 * How a grant is shown: its figures as of an instant (status, burned, remaining), the
 * burn explanation of one period, and the audit trail's snapshot of it.
 */
import type { Micros } from '../../shared/quantity.js';
import type { Period } from '../../shared/periods.js';
import { type BurnLedger, type BurnLine, compareBurnOrder, type PeriodBurn } from './burn.js';
import { toBurnGrant } from './ledger.js';
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

/**
 * "Why was access granted" for one period (R5: every figure recomputed from the burn
 * ledger): included burn, each overlapping grant in burn order, and the hour lines.
 */
export function explainPeriod(
  subject: { accountId: string; feature: string; period: Period; included: Micros | null },
  overlapping: readonly GrantDoc[],
  ledger: BurnLedger | undefined,
  now: Date,
): BurnExplanation {
  const { period } = subject;
  const burn: PeriodBurn | undefined = ledger?.periods.find((candidate) => candidate.start.getTime() === period.start.getTime());
  const burnedBefore = (id: string) =>
    (ledger?.periods ?? [])
      .filter((candidate) => candidate.start < period.start)
      .reduce((sum, candidate) => sum + (candidate.burned.get(id) ?? 0n), 0n);
  const ordered = overlapping.map(toBurnGrant).sort(compareBurnOrder);
  const docs = new Map(overlapping.map((grant) => [grant._id, grant]));
  return {
    ...subject,
    included: burn?.included ?? subject.included,
    used: burn?.used ?? 0n,
    includedBurned: burn?.includedBurned ?? 0n,
    uncovered: burn?.uncovered ?? 0n,
    grants: ordered.map((grant) => {
      const availableAtStart = burn?.availableAtStart.get(grant.id) ?? maxZero(grant.amount - burnedBefore(grant.id));
      const burned = burn?.burned.get(grant.id) ?? 0n;
      return {
        grant: viewOf(docs.get(grant.id)!, ledger?.burned.get(grant.id) ?? 0n, now),
        availableAtStart,
        burned,
        remainingAtEnd: availableAtStart - burned,
      };
    }),
    lines: burn?.lines ?? [],
  };
}

function maxZero(value: Micros): Micros {
  return value > 0n ? value : 0n;
}
