import type { Micros } from '../../shared/quantity.js';
import { DEFAULT_THRESHOLDS } from '../catalog/index.js';

/*
 * Threshold arithmetic for R9, in integers only: usage has reached threshold `t` percent
 * of `capacity` when `used × 100 ≥ t × capacity`. No ratio is ever computed as a float, so
 * "exactly 80 %" is 80 % however the units are split.
 */

/**
 * Thresholds worth evaluating: the configured ones (or the defaults), deduplicated and
 * ascending. Non-integers and negatives are dropped defensively; the catalog validates.
 */
export function normalizeThresholds(thresholds: readonly number[] | null | undefined): number[] {
  const source = thresholds ?? DEFAULT_THRESHOLDS;
  return [...new Set(source.filter((t) => Number.isSafeInteger(t) && t >= 0))].sort((a, b) => a - b);
}

/**
 * Whether `used` has reached `threshold` percent of `capacity`. Unlimited (null) and zero
 * capacities have no percentage, so they never reach anything.
 */
export function hasReached(used: Micros, capacity: Micros | null, threshold: number): boolean {
  if (capacity === null || capacity <= 0n) return false;
  return used * 100n >= BigInt(threshold) * capacity;
}

/**
 * The thresholds crossed upwards by a change from `before` to `after` used units, in
 * ascending order: a jump from 70 % to 105 % gives [80, 90, 100].
 */
export function crossedThresholds(
  before: Micros,
  after: Micros,
  capacity: Micros | null,
  thresholds: readonly number[] | null | undefined,
): number[] {
  if (after <= before) return [];
  return normalizeThresholds(thresholds).filter((t) => !hasReached(before, capacity, t) && hasReached(after, capacity, t));
}

/** Every threshold `used` has reached, ascending. */
export function reachedThresholds(used: Micros, capacity: Micros | null, thresholds: readonly number[] | null | undefined): number[] {
  return normalizeThresholds(thresholds).filter((t) => hasReached(used, capacity, t));
}

/**
 * Thresholds that a capacity increase re-arms (R9): those the usage is now below again.
 * Re-arming one that never fired is harmless: it still fires once per epoch.
 */
export function thresholdsToRearm(used: Micros, capacity: Micros | null, thresholds: readonly number[] | null | undefined): number[] {
  // No capacity (unlimited, or none without access) has no ratio to fall below.
  if (capacity === null || capacity <= 0n) return [];
  return normalizeThresholds(thresholds).filter((t) => !hasReached(used, capacity, t));
}

/** Display-only percentage (GraphQL Float), rounded down to 4 decimals from exact integers. */
export function percentUsed(used: Micros, capacity: Micros): number {
  if (capacity <= 0n) return 0;
  return Number((used * 1_000_000n) / capacity) / 10_000;
}
