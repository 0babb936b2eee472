import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { units } from '../../shared/quantity.js';
import { creditsFor, unitsFor } from './credits.js';

describe('credit arithmetic (R14)', () => {
  it('is exact where the product is: 10 × 2.5 = 25 and 3.3 × 0.1 = 0.33', () => {
    expect(creditsFor(units(10), 2_500_000n)).toBe(units(25));
    expect(creditsFor(3_300_000n, 100_000n)).toBe(330_000n);
    expect(unitsFor(units(100), 2_500_000n)).toBe(units(40));
  });

  it('rounds a burn up to the micro-credit and a capacity down to the micro-unit', () => {
    // 0.000001 units at 0.5 credits is 0.0000005 credits: charged 0.000001.
    expect(creditsFor(1n, 500_000n)).toBe(1n);
    // 1 credit at 3 per unit pays for 0.333333 units, not 0.333334.
    expect(unitsFor(units(1), 3_000_000n)).toBe(333_333n);
    expect(unitsFor(-5n, 3_000_000n)).toBe(0n);
  });

  it('never promises more than the credits pay for: creditsFor(unitsFor(c)) <= c', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 10n ** 15n }), fc.bigInt({ min: 1n, max: 10n ** 9n }), (credits, perUnit) => {
        const capacity = unitsFor(credits, perUnit);
        expect(creditsFor(capacity, perUnit)).toBeLessThanOrEqual(credits);
        // ...and one more micro-unit would not fit.
        expect(creditsFor(capacity + 1n, perUnit)).toBeGreaterThan(credits);
      }),
    );
  });
});
