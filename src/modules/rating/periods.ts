/**
 * Which billing period an invoice covers, and which usage periods it rates.
 *
 * Billing periods are anniversary periods (UTC) of the contract's billingAnchor with the
 * billingPeriod of the plan pinned at that time (shared/periods.ts does the calendar
 * math). A plan with billingPeriod NEVER bills once, for the contract's whole life, which
 * therefore needs an endsAt.
 *
 * Usage periods (each metered entitlement's resetPeriod, same anchor) are rated in the
 * billing period in which they END: in arrears, once their usage is complete. With the
 * usual resetPeriod = billingPeriod they are the same period; DAY resets give one usage
 * period per day of the billing period; a YEAR reset on a monthly plan is trued up in the
 * month the year ends; a NEVER reset (a lifetime allowance) in the period the contract
 * ends. So a finalised invoice only ever freezes usage periods that are over, and their
 * counters can be marked final (R8) without catching usage of a period still running.
 */
import { BadInputError } from '../../shared/errors.js';
import type { ContractDoc } from '../contracts/index.js';
import { periodContaining, type Period, type ResetPeriod } from '../../shared/periods.js';
import type { BilledPeriod } from './base-fee.js';

const ADJECTIVE: Record<ResetPeriod, string> = { DAY: 'daily', WEEK: 'weekly', MONTH: 'monthly', YEAR: 'yearly', NEVER: 'one-off' };

/** The billing period containing `at`, with the cadence in force then. */
export function billingPeriodAt(contract: ContractDoc, cadence: ResetPeriod, at: Date): BilledPeriod {
  if (cadence === 'NEVER') {
    if (!contract.endsAt) {
      throw new BadInputError(
        `Contract "${contract._id}" is on a plan billed once (billingPeriod NEVER) and has no endsAt, so it has no period to invoice yet; set endsAt with upsertContract.`,
        { field: 'periodStart' },
      );
    }
    return { start: contract.billingAnchor, end: contract.endsAt };
  }
  const period = periodContaining(contract.billingAnchor, cadence, at);
  return { start: period.start, end: period.end! };
}

/**
 * The period an invoice is asked for. Omitted: the current one (for a contract that has
 * ended, its last; for one not started yet, its first). Given: it must be the start of a
 * billing period of this contract, not in the future, overlapping the contract's life.
 */
export function resolveBillingPeriod(
  contract: ContractDoc,
  cadenceAt: (at: Date) => ResetPeriod,
  requested: Date | null | undefined,
  now: Date,
): BilledPeriod {
  if (!requested) {
    const lastInstant = contract.endsAt ? contract.endsAt.getTime() - 1 : Infinity;
    const at = new Date(Math.max(contract.startsAt.getTime(), Math.min(now.getTime(), lastInstant)));
    return billingPeriodAt(contract, cadenceAt(at), at);
  }
  const cadence = cadenceAt(requested);
  const period = billingPeriodAt(contract, cadence, requested);
  if (period.start.getTime() !== requested.getTime()) {
    const what = `${ADJECTIVE[cadence]}, anchored at ${contract.billingAnchor.toISOString()}`;
    const nearest =
      requested.getTime() < period.start.getTime()
        ? `the first starts at ${period.start.toISOString()}`
        : `the nearest are ${period.start.toISOString()} and ${period.end.toISOString()}`;
    throw new BadInputError(
      `periodStart ${requested.toISOString()} is not the start of a billing period of contract "${contract._id}" (${what}); ${nearest}.`,
      { field: 'periodStart' },
    );
  }
  if (period.start.getTime() > now.getTime()) {
    throw new BadInputError(
      `The billing period starting ${period.start.toISOString()} has not started yet; omit periodStart for the current period or give a past one.`,
      { field: 'periodStart' },
    );
  }
  const lifeEnd = contract.endsAt?.getTime() ?? Infinity;
  if (period.end.getTime() <= contract.startsAt.getTime() || period.start.getTime() >= lifeEnd) {
    throw new BadInputError(
      `Contract "${contract._id}" is not in force between ${period.start.toISOString()} and ${period.end.toISOString()} (it runs from ${contract.startsAt.toISOString()}${contract.endsAt ? ` to ${contract.endsAt.toISOString()}` : ''}).`,
      { field: 'periodStart' },
    );
  }
  return period;
}

/**
 * The usage periods (anchor, reset) rated in `billing`: those that end inside it,
 * (billing.start, billing.end]. A NEVER reset ends with the contract (`lifeEnd`).
 */
export function usagePeriodsRatedIn(anchor: Date, reset: ResetPeriod, billing: BilledPeriod, lifeEnd: Date | null): Period[] {
  if (reset === 'NEVER') {
    const end = lifeEnd?.getTime();
    return end !== undefined && end > billing.start.getTime() && end <= billing.end.getTime() ? [{ start: anchor, end: null }] : [];
  }
  const periods: Period[] = [];
  let period = periodContaining(anchor, reset, new Date(billing.end.getTime() - 1));
  while (period.end!.getTime() > billing.start.getTime()) {
    // The usage period running at the billing period's end is rated when it ends, later.
    if (period.end!.getTime() <= billing.end.getTime()) periods.unshift(period);
    period = periodContaining(anchor, reset, new Date(period.start.getTime() - 1));
  }
  return periods;
}
