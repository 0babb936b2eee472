import { describe, expect, it } from 'vitest';
import { units } from '../../shared/quantity.js';
import { crossedThresholds, hasReached, normalizeThresholds, percentUsed, reachedThresholds, thresholdsToRearm } from './thresholds.js';

const cap = units(1000);

describe('threshold crossings', () => {
  it('fires 80, 90 and 100 in order when one change jumps from 70 % to 105 %', () => {
    expect(crossedThresholds(units(700), units(1050), cap, [80, 90, 100])).toEqual([80, 90, 100]);
  });

  it('fires exactly at the threshold, not one micro-unit before', () => {
    expect(crossedThresholds(units(700), units(800) - 1n, cap, null)).toEqual([]);
    expect(crossedThresholds(units(700), units(800), cap, null)).toEqual([80]);
  });

  it('fires nothing for a change that stays between thresholds or above them', () => {
    expect(crossedThresholds(units(810), units(850), cap, null)).toEqual([]);
    expect(crossedThresholds(units(1100), units(1200), cap, null)).toEqual([]);
  });

  it('fires nothing for an unlimited or zero capacity', () => {
    expect(crossedThresholds(0n, units(10_000), null, null)).toEqual([]);
    expect(crossedThresholds(0n, units(10), 0n, null)).toEqual([]);
  });

  it('uses the default thresholds when none are configured, and sorts configured ones', () => {
    expect(normalizeThresholds(undefined)).toEqual([80, 90, 100]);
    expect(normalizeThresholds([100, 50, 50, 75])).toEqual([50, 75, 100]);
    expect(crossedThresholds(0n, units(2000), cap, [150, 50])).toEqual([50, 150]);
  });

  it('compares exactly with fractional micro-units (no floating point)', () => {
    // capacity 0.3 units: 0.1 + 0.2 reaches 100 % exactly.
    const small = 300_000n;
    expect(hasReached(100_000n + 200_000n, small, 100)).toBe(true);
    expect(hasReached(299_999n, small, 100)).toBe(false);
    // 2/3 of a capacity is 66.66…%: reaches 66, not 67.
    expect(hasReached(2n, 3n, 66)).toBe(true);
    expect(hasReached(2n, 3n, 67)).toBe(false);
  });

  it('never fires for a change that does not increase usage', () => {
    expect(crossedThresholds(units(900), units(900), cap, null)).toEqual([]);
  });
});

describe('reached and re-armed thresholds', () => {
  it('lists the thresholds usage has reached', () => {
    expect(reachedThresholds(units(950), cap, null)).toEqual([80, 90]);
  });

  it('re-arms the thresholds a larger capacity puts usage below', () => {
    // 950 of 1000 (95 %) becomes 950 of 1100 (86 %): 90 and 100 re-arm, 80 stays fired.
    expect(thresholdsToRearm(units(950), units(1100), null)).toEqual([90, 100]);
    expect(thresholdsToRearm(units(950), null, null)).toEqual([]);
    // A suspended contract has no capacity: nothing re-arms, so reactivation cannot re-fire.
    expect(thresholdsToRearm(units(950), 0n, null)).toEqual([]);
  });

  it('reports a display percentage rounded down to 4 decimals', () => {
    expect(percentUsed(units(2), units(3))).toBe(66.6666);
    expect(percentUsed(units(1050), cap)).toBe(105);
  });
});
