import { describe, expect, it } from 'vitest';
import { Money } from '../../shared/money.js';
import { allocateMinorUnits, formatAmount, roundToMinor } from './currency.js';

const m = (values: string[]) => values.map((value) => new Money(value));

describe('minor units', () => {
  it('rounds half-even to the minor unit', () => {
    expect(
      ['0.005', '0.015', '0.025', '2000.0004', '-0.005'].map((value) => formatAmount(roundToMinor(new Money(value), 'USD'), 'USD')),
    ).toEqual(['0.00', '0.02', '0.02', '2000.00', '0.00']);
  });

  it('allocates exact amounts so the parts add up to the rounded sum', () => {
    expect(allocateMinorUnits(m(['33.3333333', '33.3333333', '33.3333334']), 'USD')).toEqual([3333n, 3333n, 3334n]);
    expect(allocateMinorUnits(m(['0.0004', '2000', '900.2']), 'USD')).toEqual([0n, 200000n, 90020n]);
    // 0.005 three times is 0.015 → 0.02: two lines get the cent, in order.
    expect(allocateMinorUnits(m(['0.005', '0.005', '0.005']), 'USD')).toEqual([1n, 1n, 0n]);
    expect(allocateMinorUnits(m(['220.2', '-100', '0.0004']), 'USD')).toEqual([22020n, -10000n, 0n]);
    // Each floors to -0.01 (remainder 0.6); the sum -0.008 rounds to -0.01, so the first gets a cent back.
    expect(allocateMinorUnits(m(['-0.004', '-0.004']), 'USD')).toEqual([0n, -1n]);
  });
});
