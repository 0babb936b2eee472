import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { units } from '../../shared/quantity.js';
import type { AddOnVersionDoc, EntitlementTerms, PlanVersionDoc } from '../catalog/index.js';
import type { AddOnSegment, ContractDoc } from '../contracts/index.js';
import { mergeEffectiveTerms } from './merge.js';

const T0 = new Date('2026-01-01T00:00:00Z');
const DAY = 86_400_000;

function terms(changes: Partial<EntitlementTerms> = {}): EntitlementTerms {
  return {
    feature: 'api_calls',
    enabled: true,
    included: units(1_000_000),
    resetPeriod: 'MONTH',
    enforcement: 'HARD',
    grace: 0n,
    overage: null,
    thresholds: [80, 90, 100],
    config: null,
    ...changes,
  };
}

const PLAN: PlanVersionDoc = {
  _id: 'starter@1',
  key: 'starter',
  version: 1,
  name: 'Starter',
  currency: 'USD',
  baseFee: '300',
  billingPeriod: 'MONTH',
  entitlements: [terms()],
  publishedAt: T0,
  publishedBy: 'test',
};

function addOn(key: string, entitlement: Partial<EntitlementTerms>): AddOnVersionDoc {
  return {
    _id: `${key}@1`,
    key,
    version: 1,
    name: key,
    currency: 'USD',
    price: '50',
    billingPeriod: 'MONTH',
    entitlements: [terms(entitlement)],
    publishedAt: T0,
    publishedBy: 'test',
  };
}

function contract(changes: Partial<ContractDoc> = {}): ContractDoc {
  return {
    _id: 'ctr',
    accountId: 'acct',
    planKey: 'starter',
    planVersion: 1,
    status: 'ACTIVE',
    startsAt: T0,
    endsAt: null,
    billingAnchor: T0,
    createdAt: T0,
    updatedAt: T0,
    ...changes,
  };
}

const merge = (doc: ContractDoc, at: Date) =>
  mergeEffectiveTerms({
    accountId: 'acct',
    feature: 'api_calls',
    featureType: 'METERED',
    contracts: [doc],
    plans: new Map([[PLAN._id, PLAN]]),
    at,
  });

describe('add-on terms (R17)', () => {
  it('adds included × quantity of every segment in force at the instant, and nothing outside it', () => {
    const boost = addOn('boost', { included: units(500_000) });
    const segment: AddOnSegment = {
      addOn: boost,
      quantity: 2,
      effectiveAt: new Date(T0.getTime() + 10 * DAY),
      endsAt: new Date(T0.getTime() + 20 * DAY),
    };
    const doc = contract({ addOns: [segment] });
    expect(merge(doc, new Date(T0.getTime() + 9 * DAY)).included).toBe(units(1_000_000));
    expect(merge(doc, new Date(T0.getTime() + 10 * DAY)).included).toBe(units(2_000_000));
    expect(merge(doc, new Date(T0.getTime() + 20 * DAY)).included).toBe(units(1_000_000));
  });

  it('merges with the R4 rules: unlimited wins, least restrictive enforcement, cheapest overage, union of thresholds', () => {
    const soft = addOn('soft', {
      included: null,
      enforcement: 'SOFT',
      overage: { unitPrice: '0.1', per: units(1), rounding: 'EXACT' },
      thresholds: [50],
    });
    const doc = contract({ addOns: [{ addOn: soft, quantity: 1, effectiveAt: T0, endsAt: null }] });
    const merged = merge(doc, new Date(T0.getTime() + DAY));
    expect(merged).toMatchObject({ included: null, enforcement: 'SOFT', thresholds: [50, 80, 90, 100] });
    expect(merged.overage?.unitPrice).toBe('0.1');
  });

  it('gives a feature the plan does not enable, and never one whose contract has no access', () => {
    const sso = addOn('sso_pack', {});
    const plain = contract({
      addOns: [{ addOn: { ...sso, entitlements: [terms({ feature: 'other' })] }, quantity: 1, effectiveAt: T0, endsAt: null }],
    });
    const other = mergeEffectiveTerms({
      accountId: 'acct',
      feature: 'other',
      featureType: 'METERED',
      contracts: [plain],
      plans: new Map([[PLAN._id, PLAN]]),
      at: new Date(T0.getTime() + DAY),
    });
    expect(other).toMatchObject({ hasAccess: true, included: units(1_000_000) });
    const suspended = mergeEffectiveTerms({
      accountId: 'acct',
      feature: 'other',
      featureType: 'METERED',
      contracts: [{ ...plain, status: 'SUSPENDED' }],
      plans: new Map([[PLAN._id, PLAN]]),
      at: new Date(T0.getTime() + DAY),
    });
    expect(suspended).toMatchObject({ hasAccess: false, access: 'CONTRACT_INACTIVE' });
  });

  it('property: included is the plan plus Σ quantity × included of the segments in force, in any attach order', () => {
    const segmentArb = fc.record({
      included: fc.integer({ min: 0, max: 1_000_000 }),
      quantity: fc.integer({ min: 1, max: 50 }),
      from: fc.integer({ min: 0, max: 30 }),
      length: fc.integer({ min: 1, max: 30 }),
      open: fc.boolean(),
    });
    fc.assert(
      fc.property(fc.array(segmentArb, { maxLength: 6 }), fc.integer({ min: 0, max: 60 }), (specs, day) => {
        const at = new Date(T0.getTime() + day * DAY + 1);
        const segments = specs.map(
          (spec, i): AddOnSegment => ({
            addOn: addOn(`a${i}`, { included: units(spec.included) }),
            quantity: spec.quantity,
            effectiveAt: new Date(T0.getTime() + spec.from * DAY),
            endsAt: spec.open ? null : new Date(T0.getTime() + (spec.from + spec.length) * DAY),
          }),
        );
        const expected = specs.reduce((sum, spec) => {
          const inForce = spec.from * DAY <= day * DAY + 1 && (spec.open || day * DAY + 1 < (spec.from + spec.length) * DAY);
          return inForce ? sum + units(spec.included) * BigInt(spec.quantity) : sum;
        }, units(1_000_000));
        expect(merge(contract({ addOns: segments }), at).included).toBe(expected);
        expect(merge(contract({ addOns: [...segments].reverse() }), at).included).toBe(expected);
      }),
    );
  });
});

describe('trial status at an instant (R18)', () => {
  it('property: access follows the trial conversion at exactly trialEndsAt, whatever is stored', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 60 * DAY }), fc.integer({ min: -DAY, max: DAY }), fc.boolean(), (trialMs, offset, cancel) => {
        const trialEndsAt = new Date(T0.getTime() + trialMs);
        const doc = contract({
          status: 'TRIALING',
          statusHistory: [{ status: 'TRIALING', at: T0 }],
          trialEndsAt,
          trialConversion: cancel ? 'CANCEL' : 'ACTIVATE',
        });
        const at = new Date(Math.max(T0.getTime(), trialEndsAt.getTime() + offset));
        const merged = merge(doc, at);
        const ended = at.getTime() >= trialEndsAt.getTime();
        expect(merged.hasAccess).toBe(!(ended && cancel));
        if (merged.hasAccess) expect(merged.included).toBe(units(1_000_000));
      }),
    );
  });
});
