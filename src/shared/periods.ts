/**
 * Anniversary periods in UTC (R3). Period k starts at anchor + k × length, always computed
 * from the anchor rather than from the previous period, so a Jan 31 anchor gives
 * Feb 28 (29 in leap years), Mar 31, Apr 30, … and never drifts to the 28th.
 */
export type ResetPeriod = 'DAY' | 'WEEK' | 'MONTH' | 'YEAR' | 'NEVER';

export interface Period {
  start: Date;
  /** Exclusive. Null for NEVER: the period is the whole life of the entitlement. */
  end: Date | null;
}

const DAY_MS = 86_400_000;

function addMonthsClamped(anchor: Date, months: number): Date {
  const year = anchor.getUTCFullYear();
  const month = anchor.getUTCMonth() + months;
  const targetYear = year + Math.floor(month / 12);
  const targetMonth = ((month % 12) + 12) % 12;
  const lastDay = new Date(Date.UTC(targetYear, targetMonth + 1, 0)).getUTCDate();
  return new Date(
    Date.UTC(
      targetYear,
      targetMonth,
      Math.min(anchor.getUTCDate(), lastDay),
      anchor.getUTCHours(),
      anchor.getUTCMinutes(),
      anchor.getUTCSeconds(),
      anchor.getUTCMilliseconds(),
    ),
  );
}

/** Start of the k-th period after (k ≥ 0) or before (k < 0) the anchor. */
export function periodStartAt(anchor: Date, reset: Exclude<ResetPeriod, 'NEVER'>, k: number): Date {
  switch (reset) {
    case 'DAY':
      return new Date(anchor.getTime() + k * DAY_MS);
    case 'WEEK':
      return new Date(anchor.getTime() + k * 7 * DAY_MS);
    case 'MONTH':
      return addMonthsClamped(anchor, k);
    case 'YEAR':
      return addMonthsClamped(anchor, 12 * k);
  }
}

/** The period containing `at`, for an anchor and reset period. */
export function periodContaining(anchor: Date, reset: ResetPeriod, at: Date): Period {
  if (reset === 'NEVER') return { start: anchor, end: null };
  const t = at.getTime();
  // Estimate k from the average length, then step until start(k) <= at < start(k+1).
  const approxLength = { DAY: DAY_MS, WEEK: 7 * DAY_MS, MONTH: 30.436875 * DAY_MS, YEAR: 365.2425 * DAY_MS }[reset];
  let k = Math.floor((t - anchor.getTime()) / approxLength);
  while (periodStartAt(anchor, reset, k).getTime() > t) k--;
  while (periodStartAt(anchor, reset, k + 1).getTime() <= t) k++;
  return { start: periodStartAt(anchor, reset, k), end: periodStartAt(anchor, reset, k + 1) };
}

/** The period immediately after `period` (null for NEVER). */
export function nextPeriod(anchor: Date, reset: ResetPeriod, period: Period): Period | null {
  return period.end ? periodContaining(anchor, reset, period.end) : null;
}
