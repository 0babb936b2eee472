import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { EntitlementTerms } from '../catalog/index.js';
import { dimensionsAllowed, type RateLimit } from '../../shared/rate-window.js';
import { mergeAllow, mergeRateLimit, rateFits } from './rules.js';

const terms = (rateLimit: RateLimit | null, allow: EntitlementTerms['allow'] = null) => ({ rateLimit, allow }) as EntitlementTerms;

describe('R19 merge across contracts', () => {
  it('keeps the most generous rate, and none when any contract has none', () => {
    const perSecond = { limit: 10_000_000n, window: 'SECOND' as const };
    const perMinute = { limit: 300_000_000n, window: 'MINUTE' as const }; // 5 per second
    const perHour = { limit: 72_000_000_000n, window: 'HOUR' as const }; // 20 per second
    expect(mergeRateLimit([terms(perSecond), terms(perMinute)])).toEqual(perSecond);
    expect(mergeRateLimit([terms(perMinute), terms(perHour), terms(perSecond)])).toEqual(perHour);
    expect(mergeRateLimit([terms(perSecond), terms(null)])).toBeNull();
    // A tie keeps the oldest contract's.
    expect(mergeRateLimit([terms({ limit: 60_000_000n, window: 'MINUTE' }), terms({ limit: 1_000_000n, window: 'SECOND' })])).toEqual({
      limit: 60_000_000n,
      window: 'MINUTE',
    });
  });

  it('a check fits while count + requested <= limit, and names the window end', () => {
    const limit = { limit: 3_000_000n, window: 'SECOND' as const };
    const at = new Date('2026-03-01T10:00:00.250Z');
    expect(rateFits(limit, null, 3_000_000n, at)).toEqual({ fits: true, retryAfter: new Date('2026-03-01T10:00:01.000Z') });
    expect(rateFits(limit, { count: 2_000_000n, end: new Date('2026-03-01T10:00:01.000Z') }, 1_000_001n, at).fits).toBe(false);
  });
});

describe('R20 rules', () => {
  it('merges to one rule set per contract with rules, none when any contract has none', () => {
    const eu = [{ key: 'region', values: ['eu'] }];
    const us = [{ key: 'region', values: ['us'] }];
    expect(
      mergeAllow([
        { contractId: 'a', terms: terms(null, eu) },
        { contractId: 'b', terms: terms(null, us) },
      ]),
    ).toEqual([
      { contractId: 'a', rules: eu },
      { contractId: 'b', rules: us },
    ]);
    expect(
      mergeAllow([
        { contractId: 'a', terms: terms(null, eu) },
        { contractId: 'b', terms: terms(null, null) },
      ]),
    ).toBeNull();
  });

  it('admits exactly the properties that satisfy every rule of some set (property)', () => {
    const value = fc.constantFrom('us', 'eu', 'apac', 'x');
    const rule = fc.record({ key: fc.constantFrom('region', 'tier'), values: fc.uniqueArray(value, { minLength: 1 }) });
    fc.assert(
      fc.property(
        fc.array(fc.uniqueArray(rule, { selector: (r) => r.key, minLength: 1 }), { maxLength: 3 }),
        fc.dictionary(fc.constantFrom('region', 'tier', 'other'), fc.oneof(value, fc.integer())),
        (sets, properties) => {
          const expected =
            sets.length === 0 ||
            sets.some((rules) =>
              rules.every((r) => typeof properties[r.key] === 'string' && (r.values as string[]).includes(properties[r.key] as string)),
            );
          expect(dimensionsAllowed(sets, properties)).toBe(expected);
          // A request without properties passes only an unrestricted entitlement.
          expect(dimensionsAllowed(sets, null)).toBe(sets.length === 0);
        },
      ),
    );
  });
});
