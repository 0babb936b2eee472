import { describe, expect, it } from 'vitest';
import { units } from '../../shared/quantity.js';
import { decide, type EffectiveTerms } from '../entitlements/index.js';
import { decideGroup, needsObservedUsage, reasonsAt, type MemberTerms } from './decisions.js';
import { outcomeRuns } from './receipts.js';

function terms(changes: Partial<EffectiveTerms> = {}): EffectiveTerms {
  return {
    accountId: 'acct',
    feature: 'api_calls',
    featureType: 'METERED',
    access: 'ENTITLED',
    hasAccess: true,
    delinquent: false,
    enforcement: 'HARD',
    included: units(10),
    grace: units(2),
    overage: null,
    thresholds: [80, 90, 100],
    config: null,
    resetPeriod: 'MONTH',
    period: { start: new Date('2026-03-01T00:00:00Z'), end: new Date('2026-04-01T00:00:00Z') },
    counterId: 'acct|api_calls|2026-03-01T00:00:00.000Z',
    contractIds: ['c1'],
    currency: 'USD',
    ...changes,
  };
}

const members = (quantities: number[], changes: Partial<EffectiveTerms> = {}, granted = 0): MemberTerms[] =>
  quantities.map((quantity, seq) => ({
    seq,
    quantity: units(quantity),
    hourKey: seq < 2 ? '2026030100' : '2026030101',
    at: new Date('2026-03-01T00:00:00Z'),
    terms: terms(changes),
    granted: units(granted),
  }));

describe('decideGroup', () => {
  it('decides HARD events in order and guards the update so none of them can overshoot', () => {
    // limit = 10 + 2 grace = 12; observed used 4.
    const group = decideGroup(members([3, 6, 2, 3]), units(4), decide);
    expect(group.decisions.map((d) => `${d.outcome}:${d.reason}`)).toEqual([
      'ACCEPTED:INCLUDED',
      'REJECTED:QUOTA_EXCEEDED',
      'ACCEPTED:INCLUDED',
      'ACCEPTED:WITHIN_GRACE',
    ]);
    expect(group.inc).toBe(units(8));
    expect(group.hours).toEqual({ '2026030100': units(3), '2026030101': units(5) });
    // used + 8 <= 12 for the last accepted event: the counter may hold at most 4 when applied.
    expect(group.guard).toBe(units(4));
  });

  it('uses the tightest bound when an earlier event has a lower limit than a later one', () => {
    const tight = members([2])[0]!;
    const loose = { ...members([1], { included: units(100) })[0]!, seq: 1 };
    const group = decideGroup([tight, loose], 0n, decide);
    expect(group.inc).toBe(units(3));
    // Event 0: used + 2 <= 12 → used <= 10; event 1: used + 3 <= 102 → used <= 99.
    expect(group.guard).toBe(units(10));
  });

  it('counts grants into the limit (capacity = included + granted, then grace)', () => {
    const group = decideGroup(members([15, 1], {}, 5), units(0), decide);
    expect(group.decisions.map((d) => d.reason)).toEqual(['WITHIN_GRANTS', 'WITHIN_GRACE']);
    expect(group.guard).toBe(units(1));
  });

  it('puts no guard on SOFT, NONE or unlimited usage, and never needs to read the counter for them', () => {
    for (const changes of [{ enforcement: 'SOFT' as const }, { enforcement: 'NONE' as const }, { included: null }]) {
      const group = decideGroup(members([50, 50], changes), units(1000), decide);
      expect(group.guard).toBeNull();
      expect(group.inc).toBe(units(100));
      expect(needsObservedUsage(members([1], changes))).toBe(false);
    }
    expect(needsObservedUsage(members([1]))).toBe(true);
  });

  it('rejects members without access with their access reason and counts nothing for them', () => {
    const group = decideGroup(members([1, 1], { access: 'CONTRACT_INACTIVE', hasAccess: false }), 0n, decide);
    expect(group.decisions.map((d) => d.reason)).toEqual(['CONTRACT_INACTIVE', 'CONTRACT_INACTIVE']);
    expect([group.inc, group.guard]).toEqual([0n, null]);
    expect(needsObservedUsage(members([1], { access: 'NOT_ENTITLED', hasAccess: false }))).toBe(false);
  });

  it('re-derives reasons from the real pre-image without changing what was accepted', () => {
    const input = members([4, 4], { enforcement: 'SOFT' });
    const group = decideGroup(input, 0n, decide);
    expect(group.decisions.map((d) => d.reason)).toEqual(['INCLUDED', 'INCLUDED']);
    expect(reasonsAt(input, group.decisions, units(5), decide).map((d) => `${d.outcome}:${d.reason}`)).toEqual([
      'ACCEPTED:INCLUDED',
      'ACCEPTED:OVERAGE',
    ]);
  });
});

describe('outcomeRuns', () => {
  it('never lets a run span a member that is not there, so a run counts its events', () => {
    expect(
      outcomeRuns([
        { seq: 0, outcome: 'ACCEPTED', reason: 'INCLUDED' },
        { seq: 2, outcome: 'ACCEPTED', reason: 'INCLUDED' },
      ]),
    ).toEqual([
      { first: 0, last: 0, outcome: 'ACCEPTED', reason: 'INCLUDED' },
      { first: 2, last: 2, outcome: 'ACCEPTED', reason: 'INCLUDED' },
    ]);
  });

  it('compresses outcomes into runs by seq, whatever the order they were decided in', () => {
    expect(
      outcomeRuns([
        { seq: 2, outcome: 'ACCEPTED', reason: 'OVERAGE' },
        { seq: 0, outcome: 'ACCEPTED', reason: 'INCLUDED' },
        { seq: 1, outcome: 'ACCEPTED', reason: 'INCLUDED' },
        { seq: 4, outcome: 'REJECTED', reason: 'QUOTA_EXCEEDED' },
        { seq: 3, outcome: 'ACCEPTED', reason: 'OVERAGE' },
      ]),
    ).toEqual([
      { first: 0, last: 1, outcome: 'ACCEPTED', reason: 'INCLUDED' },
      { first: 2, last: 3, outcome: 'ACCEPTED', reason: 'OVERAGE' },
      { first: 4, last: 4, outcome: 'REJECTED', reason: 'QUOTA_EXCEEDED' },
    ]);
  });
});
