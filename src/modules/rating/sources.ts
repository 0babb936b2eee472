/**
 * What rating needs from other modules, as plain function types wired in
 * src/modules/index.ts, so the service is testable on its own and the modules stay
 * decoupled: the grants module's burn of a usage period, the usage module's late
 * postings, and its "mark this period final" stamp.
 */
import type { Micros } from '../../shared/quantity.js';
import type { Period } from '../../shared/periods.js';
import type { GrantBurn } from './overage.js';

export interface GrantCoverageRequest {
  accountId: string;
  feature: string;
  period: Period;
  /** An instant inside the period whose terms govern it (its last, or now). */
  at: Date;
}

export interface GrantCoverage {
  /** Units the grants made available to the period (R5: not burned in earlier periods). */
  granted: Micros;
  /** What each grant covered of the period's usage, recomputed from the hour buckets. */
  burn: GrantBurn[];
  /** R14: priced auto top-ups issued in the period, billed as TOP_UP lines. */
  topUps?: TopUpCharge[];
}

/** One priced top-up grant (R14). */
export interface TopUpCharge {
  grantId: string;
  amount: Micros;
  /** Exact money string. */
  price: string;
  issuedAt: Date;
}

/** A usage period's grant figures for rating (R5 granted and burn; R14 priced top-ups). */
export function grantFigures(coverage: GrantCoverage): { granted: Micros; grantBurn: GrantBurn[]; topUps: TopUpCharge[] } {
  return { granted: coverage.granted, grantBurn: coverage.burn, topUps: coverage.topUps ?? [] };
}

/** THE grants contribution to an invoice: one call per usage period rated. */
export type GrantCoverageSource = (request: GrantCoverageRequest) => Promise<GrantCoverage>;

export const NO_GRANT_COVERAGE: GrantCoverageSource = async () => ({ granted: 0n, burn: [] });

/** An accepted posting that landed in a period already final (R8): usage to re-rate. */
export interface LatePosting {
  postingId: string;
  counterId: string;
  units: Micros;
  /** Accepted events in the posting. */
  events: number;
  postedAt: Date | null;
}

/** Posted late postings of the given counters. */
export type LateUsageSource = (counterIds: readonly string[]) => Promise<LatePosting[]>;

export interface FinalCounter {
  counterId: string;
  accountId: string;
  feature: string;
  periodStart: Date;
  periodEnd: Date | null;
}

/** The usage module's stamp that makes isPeriodFinal() true for a counter (R8). */
export type MarkPeriodFinal = (counter: FinalCounter, at: Date) => Promise<void>;
