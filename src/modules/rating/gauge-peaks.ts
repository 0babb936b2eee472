import type { Micros } from '../../shared/quantity.js';
import type { CounterReader } from '../usage/index.js';
import type { PlannedUsage } from './rating-plan.js';

/**
 * R16: a GAUGE is billed on its period's peak level, not on a sum. Its usage periods are
 * planned and owned like a metered feature's (ownership.ts names them by the per-period
 * counter id), but the figure rated is the peak kept in the gauge's level document; the
 * overage pricing then bills max(0, peak − included − granted) like any usage.
 */
export async function withGaugePeaks(
  counters: Partial<Pick<CounterReader, 'gaugePeaks'>>,
  accountId: string,
  usage: readonly PlannedUsage[],
  used: ReadonlyMap<string, Micros | { used: Micros }>,
): Promise<Map<string, Micros>> {
  const gauges = usage.filter(isGauge);
  const result = new Map([...used].map(([id, value]) => [id, typeof value === 'bigint' ? value : value.used]));
  if (gauges.length === 0 || !counters.gaugePeaks) return result;
  const peaks = await counters.gaugePeaks(
    gauges.map((entry) => ({ accountId, feature: entry.feature._id, periodStart: entry.period.start })),
  );
  for (const [i, entry] of gauges.entries()) result.set(entry.counterId, peaks[i]!);
  return result;
}

/**
 * Gauge periods are not stamped final: a gauge's level document spans every period, and
 * a change is never `late` (R8 re-rating does not apply to levels).
 */
export function withoutGauges<T extends Pick<PlannedUsage, 'feature'>>(usage: readonly T[]): T[] {
  return usage.filter((entry) => !isGauge(entry));
}

function isGauge(usage: Pick<PlannedUsage, 'feature'>): boolean {
  return usage.feature.type === 'GAUGE';
}
