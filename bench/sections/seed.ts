import type { BenchContext } from '../harness.js';

/** The catalog and plan the bench sections share; idempotent, so sections can run alone. */
export async function seedGrowthPlan(context: BenchContext): Promise<void> {
  const existing = await context.graphql(`{ plan(key: "growth") { version } }`);
  if (existing.plan) return;
  for (const input of [
    { key: 'api_calls', name: 'API calls', type: 'METERED', unit: 'call' },
    { key: 'bulk_export', name: 'Bulk exports', type: 'METERED', unit: 'export' },
    { key: 'sso', name: 'Single sign-on', type: 'BOOLEAN' },
  ]) {
    await context.graphql(`mutation ($input: FeatureInput!) { defineFeature(input: $input) { key } }`, { input });
  }
  await context.graphql(`mutation ($input: PlanInput!) { publishPlan(input: $input) { version } }`, {
    input: {
      key: 'growth',
      name: 'Growth',
      currency: 'USD',
      baseFee: '499',
      entitlements: [
        { feature: 'api_calls', included: '10000000', enforcement: 'HARD', grace: '100000', overage: { unitPrice: '0.20', per: '1000' } },
        { feature: 'bulk_export', included: '50000', enforcement: 'SOFT', overage: { unitPrice: '2', per: '1000' } },
        { feature: 'sso' },
      ],
    },
  });
}

/** The pooled plan (R13) the pools and round-trips sections share: the growth catalog with a HARD pool. */
export async function seedPooledPlan(context: BenchContext): Promise<void> {
  await seedGrowthPlan(context);
  const existing = await context.graphql(`{ plan(key: "growth_pool") { version } }`);
  if (existing.plan) return;
  await context.graphql(`mutation ($input: PlanInput!) { publishPlan(input: $input) { version } }`, {
    input: {
      key: 'growth_pool',
      name: 'Growth (pooled)',
      currency: 'USD',
      entitlements: [{ feature: 'api_calls', included: '100000000', enforcement: 'HARD', pooled: true }],
    },
  });
}

export async function seedContract(context: BenchContext, accountId: string): Promise<void> {
  await seedGrowthPlan(context);
  await context.graphql(`mutation ($input: ContractInput!) { upsertContract(input: $input) { id } }`, {
    input: { id: `ctr_${accountId}`, accountId, planKey: 'growth', startsAt: '2026-01-31T00:00:00Z' },
  });
}
