import { describe, expect, it } from 'vitest';
import { toMicros, units } from '../../shared/quantity.js';
import { decide, type EffectiveTerms } from '../entitlements/index.js';
import type { MemberTerms } from './decisions.js';
import { decideGauge, peakIn } from './gauge.js';

const MARCH = { start: new Date('2026-03-01T00:00:00Z'), end: new Date('2026-04-01T00:00:00Z') };
const APRIL = { start: new Date('2026-04-01T00:00:00Z'), end: new Date('2026-05-01T00:00:00Z') };

function terms(changes: Partial<EffectiveTerms> = {}): EffectiveTerms {
  return {
    accountId: 'acct',
    feature: 'seats',
    featureType: 'GAUGE',
    access: 'ENTITLED',
    hasAccess: true,
    delinquent: false,
    enforcement: 'HARD',
    included: units(10),
    grace: units(1),
    overage: null,
    thresholds: [80],
    config: null,
    resetPeriod: 'MONTH',
    period: MARCH,
    counterId: 'acct|seats|level',
    contractIds: ['c1'],
    currency: 'USD',
    ...changes,
  };
}

const member = (seq: number, quantity: number, period = MARCH): MemberTerms => ({
  seq,
  quantity: units(quantity),
  hourKey: period === MARCH ? '2026030100' : '2026040100',
  at: period.start,
  terms: terms({ period }),
  granted: 0n,
});

describe('decideGauge', () => {
  it('moves the level by signed deltas and sets, in order, refusing above capacity + grace and below zero', () => {
    const group = decideGauge([member(0, 4), member(1, 9), member(2, -6), member(3, 8), member(4, 11)], new Set([3, 4]), units(3), decide);
    expect(group.decisions.map((d) => [d.outcome, d.reason])).toEqual([
      ['ACCEPTED', 'INCLUDED'], // 3 → 7
      ['REJECTED', 'QUOTA_EXCEEDED'], // 16 > 11
      ['ACCEPTED', 'INCLUDED'], // 7 → 1
      ['ACCEPTED', 'INCLUDED'], // set 8
      ['ACCEPTED', 'WITHIN_GRACE'], // set 11 = capacity + grace
    ]);
    expect(group.inc).toBe(units(8));
    expect(group.after).toBe(units(11));
    expect(group.peaks).toEqual({ [`p${MARCH.start.getTime()}`]: units(11) });
    expect(decideGauge([member(0, -4)], new Set(), units(3), decide).decisions[0]).toMatchObject({ reason: 'LEVEL_BELOW_ZERO' });
  });

  it('lets decreases pass above the ceiling and counts the level carried into a period in its peak', () => {
    const group = decideGauge([member(0, -1, APRIL), member(1, -2, APRIL)], new Set(), units(15), decide);
    expect(group.decisions.map((d) => d.outcome)).toEqual(['ACCEPTED', 'ACCEPTED']);
    expect(group.peaks).toEqual({ [`p${APRIL.start.getTime()}`]: units(15) });
    expect(group.levels).toEqual({ [`p${APRIL.start.getTime()}`]: units(12) });
  });
});

describe('peakIn', () => {
  it('is the recorded peak, else the level carried in from the latest earlier period, else 0', () => {
    const doc = { peaks: { [`p${MARCH.start.getTime()}`]: units(31) }, levels: { [`p${MARCH.start.getTime()}`]: units(25) } };
    expect(peakIn(doc, MARCH.start, toMicros)).toBe(units(31));
    expect(peakIn(doc, APRIL.start, toMicros)).toBe(units(25));
    expect(peakIn(doc, new Date('2026-02-01T00:00:00Z'), toMicros)).toBe(0n);
    expect(peakIn(null, MARCH.start, toMicros)).toBe(0n);
  });
});
