import type { Micros } from '../../shared/quantity.js';
import { counterId } from './counters.js';
import type { PendingEntry } from './model.js';

/** A burning feature's own units and hour buckets on a credit counter (R14), signed: the `$inc` fields. */
export function burnIncrements(burn: NonNullable<PendingEntry['burn']>, sign: bigint): Record<string, Micros> {
  const inc: Record<string, Micros> = { [`burns.${burn.feature}.used`]: sign * burn.inc };
  for (const [hour, quantity] of Object.entries(burn.hours)) inc[`burns.${burn.feature}.hours.${hour}`] = sign * quantity;
  return inc;
}

/** A regex matching the ids of every counter of (account, feature), whatever the period. */
export function counterIdPrefixPattern(accountId: string, feature: string): string {
  const prefix = counterId(accountId, feature, new Date(0)).replace(/[^|]*$/, '');
  return `^${prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`;
}
