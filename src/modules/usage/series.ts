import { BadInputError } from '../../shared/errors.js';
import { toMicros, type Micros } from '../../shared/quantity.js';
import { hourStart, type CounterDoc } from './counters.js';

export type Granularity = 'HOUR' | 'DAY' | 'MONTH';

export interface UsagePointView {
  start: Date;
  used: Micros;
}

export interface UsageSeriesView {
  feature: string;
  granularity: Granularity;
  from: Date;
  to: Date;
  total: Micros;
  points: UsagePointView[];
  /** With `groupBy` (breakdown.ts): one series per property value. */
  groups?: Array<{ value: string | null; total: Micros; points: UsagePointView[] }>;
}

const HOUR_MS = 3_600_000;
const MAX_POINTS = 10_000;

/** Start of the UTC bucket containing `at`. */
export function bucketStart(at: Date, granularity: Granularity): Date {
  switch (granularity) {
    case 'HOUR':
      return new Date(Math.floor(at.getTime() / HOUR_MS) * HOUR_MS);
    case 'DAY':
      return new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), at.getUTCDate()));
    case 'MONTH':
      return new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), 1));
  }
}

export function nextBucket(start: Date, granularity: Granularity): Date {
  switch (granularity) {
    case 'HOUR':
      return new Date(start.getTime() + HOUR_MS);
    case 'DAY':
      return new Date(Date.UTC(start.getUTCFullYear(), start.getUTCMonth(), start.getUTCDate() + 1));
    case 'MONTH':
      return new Date(Date.UTC(start.getUTCFullYear(), start.getUTCMonth() + 1, 1));
  }
}

/** Defaults: the last 48 hours, 30 days or 12 months up to now. */
export function defaultRange(granularity: Granularity, now: Date): { from: Date; to: Date } {
  const back = { HOUR: 48 * HOUR_MS, DAY: 30 * 24 * HOUR_MS, MONTH: 365 * 24 * HOUR_MS }[granularity];
  return { from: new Date(now.getTime() - back), to: now };
}

/**
 * A dense series (every bucket present, zeros included) from the counters' hour buckets,
 * which hold usage by the hour of each event's timestamp. Buckets are UTC; `from` is
 * rounded down to its bucket, `to` is exclusive.
 */
export function buildUsageSeries(
  counters: ReadonlyArray<Pick<CounterDoc, 'hours'>>,
  feature: string,
  granularity: Granularity,
  from: Date,
  to: Date,
): UsageSeriesView {
  if (to.getTime() <= from.getTime()) throw new BadInputError('usage: `to` must be after `from`.', { field: 'to' });
  const first = bucketStart(from, granularity);
  const points: UsagePointView[] = [];
  const index = new Map<number, UsagePointView>();
  for (let start = first; start.getTime() < to.getTime(); start = nextBucket(start, granularity)) {
    if (points.length >= MAX_POINTS) {
      throw new BadInputError(
        `usage: the range holds more than ${MAX_POINTS} ${granularity} buckets; narrow it or use a coarser granularity.`,
        {
          field: 'granularity',
        },
      );
    }
    const point = { start, used: 0n };
    points.push(point);
    index.set(start.getTime(), point);
  }
  let total = 0n;
  for (const counter of counters) {
    for (const [key, value] of Object.entries(counter.hours ?? {})) {
      const hour = hourStart(key);
      if (hour.getTime() < first.getTime() || hour.getTime() >= to.getTime()) continue;
      const point = index.get(bucketStart(hour, granularity).getTime());
      if (!point) continue;
      const used = toMicros(value);
      point.used += used;
      total += used;
    }
  }
  return { feature, granularity, from: first, to, total, points };
}
