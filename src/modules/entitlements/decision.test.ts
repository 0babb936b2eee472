import { describe, expect, it } from 'vitest';
import { units, type Micros } from '../../shared/quantity.js';
import { buildEntitlementView, decide, hardCeiling } from './decision.js';
import type { EffectiveTerms } from './model.js';

function terms(changes: Partial<EffectiveTerms> = {}): EffectiveTerms {
  return {
    accountId: 'acct',
    feature: 'api_calls',
    featureType: 'METERED',
    access: 'ENTITLED',
    hasAccess: true,
    delinquent: false,
    enforcement: 'HARD',
    included: units(100),
    grace: units(10),
    overage: { unitPrice: '0.20', per: units(1000), rounding: 'UP' },
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

const decideUnits = (t: EffectiveTerms, used: number, granted: number, requested: number) =>
  decide(t, units(used), units(granted), units(requested));

describe('decide', () => {
  it('INCLUDED while used + requested fits in the included amount (boundary inclusive)', () => {
    expect(decideUnits(terms(), 99, 0, 1)).toMatchObject({
      allowed: true,
      reason: 'INCLUDED',
      capacity: units(100),
      remaining: units(1),
      overageUnits: 0n,
    });
  });

  it('WITHIN_GRANTS when it fits only thanks to grants', () => {
    expect(decideUnits(terms(), 100, 20, 20)).toMatchObject({
      allowed: true,
      reason: 'WITHIN_GRANTS',
      capacity: units(120),
      remaining: units(20),
    });
  });

  it('HARD: WITHIN_GRACE up to capacity + grace, then QUOTA_EXCEEDED', () => {
    expect(decideUnits(terms(), 100, 0, 10)).toMatchObject({ allowed: true, reason: 'WITHIN_GRACE', overageUnits: units(10) });
    expect(decideUnits(terms(), 100, 0, 11)).toMatchObject({ allowed: false, reason: 'QUOTA_EXCEEDED', overageUnits: 0n, remaining: 0n });
  });

  it('SOFT and NONE: OVERAGE, counting only the part of the request beyond capacity', () => {
    expect(decideUnits(terms({ enforcement: 'SOFT' }), 95, 0, 10)).toMatchObject({
      allowed: true,
      reason: 'OVERAGE',
      overageUnits: units(5),
    });
    expect(decideUnits(terms({ enforcement: 'NONE' }), 150, 0, 10)).toMatchObject({
      allowed: true,
      reason: 'OVERAGE',
      overageUnits: units(10),
    });
  });

  it('unlimited and BOOLEAN features are INCLUDED with null capacity', () => {
    expect(decideUnits(terms({ included: null }), 1e9, 0, 1e9)).toMatchObject({
      allowed: true,
      reason: 'INCLUDED',
      capacity: null,
      remaining: null,
    });
    expect(decideUnits(terms({ featureType: 'BOOLEAN', included: null, period: null }), 0, 0, 1)).toMatchObject({
      allowed: true,
      reason: 'INCLUDED',
      capacity: null,
    });
  });

  it('denies without access, with the access reason', () => {
    for (const access of ['NOT_ENTITLED', 'CONTRACT_INACTIVE', 'UNKNOWN_FEATURE'] as const) {
      expect(decideUnits(terms({ access, hasAccess: false }), 0, 0, 1)).toMatchObject({ allowed: false, reason: access });
    }
  });

  it('works in exact micro-units (0.1 + 0.2 = 0.3)', () => {
    const t = terms({ included: 300_000n, grace: 0n });
    expect(decide(t, 100_000n, 0n, 200_000n).reason).toBe('INCLUDED');
    expect(decide(t, 100_000n, 0n, 200_001n).reason).toBe('QUOTA_EXCEEDED');
  });

  it('gives the HARD ceiling capacity + grace, and none for SOFT or unlimited', () => {
    expect(hardCeiling(terms(), units(5))).toBe(units(115));
    expect(hardCeiling(terms({ enforcement: 'SOFT' }), 0n)).toBeNull();
    expect(hardCeiling(terms({ included: null }), 0n)).toBeNull();
  });
});

describe('entitlement figures', () => {
  const view = (t: EffectiveTerms, used: Micros, granted: Micros = 0n) => buildEntitlementView(t, used, granted);

  it('reports the seed example: 47,210 of 50,000 used at $0.002 a unit', () => {
    const v = view(
      terms({ included: units(50_000), enforcement: 'SOFT', overage: { unitPrice: '2', per: units(1000), rounding: 'EXACT' } }),
      units(47_210),
    );
    expect(v).toMatchObject({ capacity: units(50_000), remaining: units(2_790), overage: 0n, percentUsed: 94.42, overagePrice: '0.002' });
  });

  it('clamps remaining at zero and reports overage separately', () => {
    expect(view(terms(), units(130), units(10))).toMatchObject({ capacity: units(110), remaining: 0n, overage: units(20) });
  });

  it('divides the overage price exactly (0.20 per 1,000 = 0.0002)', () => {
    expect(view(terms(), 0n).overagePrice).toBe('0.0002');
  });

  it('gives null capacity, remaining and percentUsed when unlimited', () => {
    expect(view(terms({ included: null }), units(5))).toMatchObject({ capacity: null, remaining: null, percentUsed: null, overage: 0n });
  });
});

describe('entitlement overagePrice with tiers (R15): the price of the next billable unit', () => {
  // Stripe's Typographic tiers: 1-5 at 7, 6-10 at 6.50, 11+ at 6; 100 included, 10 granted.
  const tiers = [
    { upTo: units(5), unitPrice: '7', flatFee: '0' },
    { upTo: units(10), unitPrice: '6.5', flatFee: '0' },
    { upTo: null, unitPrice: '6', flatFee: '0' },
  ];
  const tiered = (model: 'GRADUATED' | 'VOLUME') =>
    terms({ enforcement: 'SOFT', overage: { unitPrice: '7', per: units(1), rounding: 'EXACT', model, tiers } });

  it.each([
    // used (capacity 110), next unit's price
    [50, '7'], // within capacity: the first billable unit is in tier 1
    [110, '7'],
    [114, '7'],
    [115, '6.5'], // 5 billable: the 6th falls in tier 2
    [120, '6'], // 10 billable: the 11th falls in tier 3
    [500, '6'],
  ])('with %s used, the next unit costs %s (GRADUATED and VOLUME alike)', (used, price) => {
    expect(buildEntitlementView(tiered('GRADUATED'), units(used), units(10)).overagePrice).toBe(price);
    expect(buildEntitlementView(tiered('VOLUME'), units(used), units(10)).overagePrice).toBe(price);
  });
});
