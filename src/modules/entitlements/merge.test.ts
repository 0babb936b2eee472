import { describe, expect, it } from 'vitest';
import { units } from '../../shared/quantity.js';
import type { EntitlementTerms, FeatureDoc, PlanVersionDoc } from '../catalog/index.js';
import type { ContractDoc } from '../contracts/index.js';
import { mergeEffectiveTerms, type MergeInput } from './merge.js';

const T0 = new Date('2026-01-01T00:00:00Z');
const AT = new Date('2026-03-15T12:00:00Z');

const metered: FeatureDoc = { _id: 'api_calls', name: 'API calls', type: 'METERED', unit: 'call', createdAt: T0, updatedAt: T0 };
const flag: FeatureDoc = { _id: 'sso', name: 'SSO', type: 'BOOLEAN', unit: null, createdAt: T0, updatedAt: T0 };

function terms(feature: string, changes: Partial<EntitlementTerms> = {}): EntitlementTerms {
  return {
    feature,
    enabled: true,
    included: units(100),
    resetPeriod: 'MONTH',
    enforcement: 'HARD',
    grace: 0n,
    overage: null,
    thresholds: [80, 90, 100],
    config: null,
    ...changes,
  };
}

function plan(key: string, version: number, entitlements: EntitlementTerms[], currency = 'USD'): PlanVersionDoc {
  return {
    _id: `${key}@${version}`,
    key,
    version,
    name: key,
    currency,
    baseFee: null,
    billingPeriod: 'MONTH',
    entitlements,
    publishedAt: T0,
    publishedBy: 'test',
  };
}

function contract(id: string, planDoc: PlanVersionDoc, changes: Partial<ContractDoc> = {}): ContractDoc {
  return {
    _id: id,
    accountId: 'acct',
    planKey: planDoc.key,
    planVersion: planDoc.version,
    status: 'ACTIVE',
    startsAt: T0,
    endsAt: null,
    billingAnchor: T0,
    createdAt: T0,
    updatedAt: T0,
    ...changes,
  };
}

function merge(contracts: ContractDoc[], plans: PlanVersionDoc[], changes: Partial<MergeInput> = {}) {
  return mergeEffectiveTerms({
    accountId: 'acct',
    feature: 'api_calls',
    featureType: metered.type,
    contracts,
    plans: new Map(plans.map((p) => [p._id, p])),
    at: AT,
    ...changes,
  });
}

describe('merging the contracts in force (R4)', () => {
  it('sums included amounts, keeps the least restrictive enforcement, the cheapest unit price and sums grace', () => {
    const a = plan('a', 1, [
      terms('api_calls', {
        included: units(100),
        enforcement: 'HARD',
        grace: units(5),
        overage: { unitPrice: '0.20', per: units(1000), rounding: 'UP' },
      }),
    ]);
    const b = plan('b', 1, [
      terms('api_calls', {
        included: units(50),
        enforcement: 'SOFT',
        grace: units(1),
        overage: { unitPrice: '0.0003', per: units(1), rounding: 'EXACT' },
      }),
    ]);
    const merged = merge([contract('c1', a), contract('c2', b, { startsAt: new Date('2026-02-01T00:00:00Z') })], [a, b]);
    expect(merged).toMatchObject({
      access: 'ENTITLED',
      hasAccess: true,
      included: units(150),
      enforcement: 'SOFT',
      grace: units(6),
      contractIds: ['c1', 'c2'],
    });
    // 0.20 per 1,000 = 0.0002 per unit, cheaper than 0.0003 per unit
    expect(merged.overage).toEqual({ unitPrice: '0.20', per: units(1000), rounding: 'UP' });
  });

  it('compares a tiered overage (R15) by its first billable unit: tier 1 price plus flat fee, oldest on a tie', () => {
    const tiered = (unitPrice: string, flatFee: string) => ({
      unitPrice,
      per: units(1),
      rounding: 'EXACT' as const,
      model: 'GRADUATED' as const,
      tiers: [
        { upTo: units(10), unitPrice, flatFee },
        { upTo: null, unitPrice: '0.01', flatFee: '0' },
      ],
    });
    const perUnit = { unitPrice: '1', per: units(1), rounding: 'EXACT' as const };
    const later = { startsAt: new Date('2026-02-01T00:00:00Z') };
    const pick = (first: object, second: object) => {
      const a = plan('a', 1, [terms('api_calls', { overage: first as never })]);
      const b = plan('b', 1, [terms('api_calls', { overage: second as never })]);
      return merge([contract('c1', a), contract('c2', b, later)], [a, b]).overage;
    };
    // 0.50 + 0 < 1: the tiered price wins though per-unit is older.
    expect(pick(perUnit, tiered('0.50', '0'))).toEqual(tiered('0.50', '0'));
    // 0 + 100 flat > 1: a free first tier with a flat fee does not undercut a 1.00 unit price.
    expect(pick(perUnit, tiered('0', '100'))).toEqual(perUnit);
    // 1 = 1: the oldest contract's price stays.
    expect(pick(tiered('1', '0'), perUnit)).toEqual(tiered('1', '0'));
    expect(pick(perUnit, tiered('1', '0'))).toEqual(perUnit);
  });

  it('lets unlimited win and NONE beat SOFT', () => {
    const a = plan('a', 1, [terms('api_calls', { included: null, enforcement: 'SOFT' })]);
    const b = plan('b', 1, [terms('api_calls', { enforcement: 'NONE' })]);
    expect(merge([contract('c1', a), contract('c2', b)], [a, b])).toMatchObject({ included: null, enforcement: 'NONE' });
  });

  it('ORs boolean features: one enabling contract is enough', () => {
    const off = plan('off', 1, [terms('sso', { enabled: false, included: null })]);
    const on = plan('on', 1, [terms('sso', { included: null })]);
    const merged = merge([contract('c1', off), contract('c2', on)], [off, on], { feature: 'sso', featureType: flag.type });
    expect(merged).toMatchObject({
      hasAccess: true,
      featureType: 'BOOLEAN',
      included: null,
      period: null,
      counterId: null,
      contractIds: ['c2'],
    });
  });

  it('unions thresholds and shallow-merges config oldest first', () => {
    const a = plan('a', 1, [terms('api_calls', { thresholds: [50, 100], config: { seats: 3, region: 'eu' } })]);
    const b = plan('b', 1, [terms('api_calls', { thresholds: [90, 100], config: { seats: 5 } })]);
    const merged = merge([contract('c2', b, { startsAt: new Date('2026-02-01T00:00:00Z') }), contract('c1', a)], [a, b]);
    expect(merged.thresholds).toEqual([50, 90, 100]);
    expect(merged.config).toEqual({ seats: 5, region: 'eu' });
  });

  it('anchors the period at the oldest contributing contract', () => {
    const a = plan('a', 1, [terms('api_calls')]);
    const older = contract('old', a, { startsAt: new Date('2025-12-01T00:00:00Z'), billingAnchor: new Date('2025-12-31T00:00:00Z') });
    const newer = contract('new', a, { billingAnchor: new Date('2026-01-10T00:00:00Z') });
    const merged = merge([newer, older], [a]);
    expect(merged.period).toEqual({ start: new Date('2026-02-28T00:00:00Z'), end: new Date('2026-03-31T00:00:00Z') });
    expect(merged.counterId).toBe('acct|api_calls|2026-02-28T00:00:00.000Z');
  });

  it('applies contract overrides over the plan, and overrides can add a feature the plan lacks', () => {
    const a = plan('a', 1, [terms('api_calls')]);
    const overridden = contract('c1', a, { overrides: { api_calls: { included: units(7) }, sso: { enabled: true } } });
    expect(merge([overridden], [a]).included).toBe(units(7));
    expect(merge([overridden], [a], { feature: 'sso', featureType: flag.type }).hasAccess).toBe(true);
  });

  it('uses the plan pinned at the instant (mid-cycle upgrade applies to the whole period)', () => {
    const v1 = plan('growth', 1, [terms('api_calls', { included: units(100) })]);
    const v2 = plan('growth', 2, [terms('api_calls', { included: units(500) })]);
    const upgraded = contract('c1', v2, {
      planHistory: [
        { planKey: 'growth', planVersion: 1, effectiveAt: T0 },
        { planKey: 'growth', planVersion: 2, effectiveAt: new Date('2026-03-10T00:00:00Z') },
      ],
    });
    expect(merge([upgraded], [v1, v2]).included).toBe(units(500));
    expect(merge([upgraded], [v1, v2], { at: new Date('2026-03-09T00:00:00Z') }).included).toBe(units(100));
  });
});

describe('access from contract status and time', () => {
  const a = plan('a', 1, [terms('api_calls')]);

  it('flags PAST_DUE as delinquent but keeps access', () => {
    expect(merge([contract('c1', a, { status: 'PAST_DUE' })], [a])).toMatchObject({ hasAccess: true, delinquent: true });
  });

  it('gives CONTRACT_INACTIVE for suspended, canceled, ended or future contracts', () => {
    for (const changes of [
      { status: 'SUSPENDED' as const },
      { status: 'CANCELED' as const },
      { endsAt: new Date('2026-03-15T12:00:00Z') },
      { startsAt: new Date('2026-03-15T12:00:01Z') },
    ]) {
      expect(merge([contract('c1', a, changes)], [a])).toMatchObject({ access: 'CONTRACT_INACTIVE', hasAccess: false, period: null });
    }
  });

  it('ignores a suspended contract when an active one enables the feature', () => {
    const b = plan('b', 1, [terms('api_calls', { included: units(1) })]);
    expect(merge([contract('c1', a, { status: 'SUSPENDED' }), contract('c2', b)], [a, b])).toMatchObject({
      hasAccess: true,
      included: units(1),
      contractIds: ['c2'],
    });
  });

  it('gives CONTRACT_INACTIVE when only a suspended contract would enable the feature', () => {
    const other = plan('other', 1, [terms('bulk_export')]);
    expect(merge([contract('c1', a, { status: 'SUSPENDED' }), contract('c2', other)], [a, other]).access).toBe('CONTRACT_INACTIVE');
  });

  it('gives NOT_ENTITLED without contracts, for a feature absent from the plan, or disabled', () => {
    expect(merge([], []).access).toBe('NOT_ENTITLED');
    const other = plan('other', 1, [terms('bulk_export')]);
    expect(merge([contract('c1', other)], [other]).access).toBe('NOT_ENTITLED');
    const disabled = plan('d', 1, [terms('api_calls', { enabled: false })]);
    expect(merge([contract('c1', disabled)], [disabled]).access).toBe('NOT_ENTITLED');
  });

  it('gives UNKNOWN_FEATURE for a feature not in the catalog', () => {
    expect(merge([contract('c1', a)], [a], { feature: 'nope', featureType: null })).toMatchObject({
      access: 'UNKNOWN_FEATURE',
      featureType: null,
    });
  });
});
