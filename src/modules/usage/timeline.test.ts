import { describe, expect, it } from 'vitest';
import { units } from '../../shared/quantity.js';
import type { EntitlementTerms, PlanVersionDoc } from '../catalog/index.js';
import type { ContractDoc } from '../contracts/index.js';
import { mergeEffectiveTerms, type EffectiveTerms } from '../entitlements/index.js';
import { termsTimeline } from './timeline.js';

const T0 = new Date('2025-01-01T00:00:00Z');
const at = (iso: string) => new Date(iso);

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

function plan(key: string, version: number, entitlements: EntitlementTerms[]): PlanVersionDoc {
  return {
    _id: `${key}@${version}`,
    key,
    version,
    name: key,
    currency: 'USD',
    baseFee: null,
    billingPeriod: 'MONTH',
    entitlements,
    publishedAt: T0,
    publishedBy: 'test',
  };
}

function contract(id: string, changes: Partial<ContractDoc>): ContractDoc {
  return {
    _id: id,
    accountId: 'acct',
    planKey: 'basic',
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

// Boundaries of every kind: contract starts and ends, a mid-cycle plan change, a second
// contract with another anchor and reset period, and a suspended one.
const plans = new Map(
  [
    plan('basic', 1, [terms('api_calls'), terms('tokens', { resetPeriod: 'WEEK', included: null })]),
    plan('pro', 1, [terms('api_calls', { included: units(1000), enforcement: 'SOFT', resetPeriod: 'WEEK' })]),
  ].map((doc) => [doc._id, doc]),
);
const contracts: ContractDoc[] = [
  contract('c1', {
    startsAt: at('2025-01-15T10:00:00Z'),
    billingAnchor: at('2025-01-31T00:00:00Z'),
    planHistory: [
      { planKey: 'basic', planVersion: 1, effectiveAt: at('2025-01-15T10:00:00Z') },
      { planKey: 'pro', planVersion: 1, effectiveAt: at('2025-06-10T12:34:56.789Z') },
    ],
  }),
  contract('c2', { startsAt: at('2025-03-01T08:00:00Z'), endsAt: at('2025-04-20T00:00:00Z'), billingAnchor: at('2025-03-01T08:00:00Z') }),
  contract('c3', { startsAt: at('2025-09-01T00:00:00Z'), endsAt: at('2025-10-01T00:00:00Z'), status: 'SUSPENDED', planKey: 'pro' }),
];

function directly(feature: string, instant: Date): EffectiveTerms {
  return mergeEffectiveTerms({ accountId: 'acct', feature, featureType: 'METERED', contracts, plans, at: instant });
}

describe('termsTimeline', () => {
  it('gives exactly the merged terms at every instant, across every kind of boundary, with few merges', async () => {
    let merges = 0;
    const timeline = termsTimeline(
      async (requests, instant) => {
        merges++;
        return requests.map(({ feature }) => directly(feature, instant));
      },
      async () => contracts,
    );
    // A deterministic spread of instants from before the first contract to after the last,
    // plus every boundary and the millisecond on either side of it.
    let seed = 42;
    const random = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const from = at('2024-12-01T00:00:00Z').getTime();
    const to = at('2026-01-01T00:00:00Z').getTime();
    const instants = Array.from({ length: 3_000 }, () => new Date(from + Math.floor(random() * (to - from))));
    for (const edge of [
      '2025-01-15T10:00:00Z',
      '2025-03-01T08:00:00Z',
      '2025-04-20T00:00:00Z',
      '2025-06-10T12:34:56.789Z',
      '2025-03-31T00:00:00Z',
      '2025-09-01T00:00:00Z',
    ]) {
      for (const offset of [-1, 0, 1]) instants.push(new Date(at(edge).getTime() + offset));
    }
    const requests = instants.flatMap((instant) => ['api_calls', 'tokens'].map((feature) => ({ accountId: 'acct', feature, at: instant })));

    const resolved = await timeline(requests);
    for (const [index, request] of requests.entries()) {
      expect(resolved[index], `${request.feature} at ${request.at.toISOString()}`).toEqual(directly(request.feature, request.at));
    }
    expect(merges).toBeLessThan(requests.length / 10);
  });

  it('resolves a batch of timestamps inside one period once', async () => {
    let merges = 0;
    const timeline = termsTimeline(
      async (requests, instant) => {
        merges++;
        return requests.map(({ feature }) => directly(feature, instant));
      },
      async () => contracts,
    );
    const base = at('2025-02-10T00:00:00Z').getTime();
    await timeline(Array.from({ length: 1_000 }, (_, i) => ({ accountId: 'acct', feature: 'api_calls', at: new Date(base + i * 60) })));
    expect(merges).toBe(1);
  });
});
