/**
 * Issue 14 (R13): a pooled check and a pooled recordUsage beside the unpooled ones, same
 * rate, same run. The member has no contract: it draws from its parent's pooled
 * api_calls (HARD), capped with setAccountLimit, so every pooled posting pays for both
 * guards in its one counter update, and every pooled check for the hierarchy lookup.
 */
import { describeLoad, type BenchContext, type BenchSection } from '../harness.js';
import { seedContract, seedPooledPlan } from './seed.js';

const RECORD = `mutation ($input: UsageEventInput!) { recordUsage(input: $input) { status } }`;
const RECORD_BATCH = `mutation ($events: [UsageEventInput!]!) { recordUsageBatch(events: $events) { accepted } }`;
const check = (accountId: string) =>
  `query { checkEntitlement(accountId: "${accountId}", feature: "api_calls", requestedUnits: "1") { allowed reason used capacity } }`;

async function seedPool(context: BenchContext, suffix: string): Promise<{ ownerId: string; memberId: string; plainId: string }> {
  await seedPooledPlan(context);
  const ownerId = `acct_pool_owner_${suffix}`;
  const memberId = `acct_pool_member_${suffix}`;
  const plainId = `acct_plain_${suffix}`;
  await context.graphql(`mutation ($input: ContractInput!) { upsertContract(input: $input) { id } }`, {
    input: { id: `ctr_${ownerId}`, accountId: ownerId, planKey: 'growth_pool', startsAt: '2026-01-31T00:00:00Z' },
  });
  await seedContract(context, plainId);
  await context.graphql(`mutation { setAccountParent(accountId: "${memberId}", parentId: "${ownerId}") { id } }`);
  await context.graphql(`mutation { setAccountLimit(accountId: "${memberId}", feature: "api_calls", limit: "90000000") { id } }`);
  return { ownerId, memberId, plainId };
}

export const poolsSection: BenchSection = {
  name: 'pools',
  description: 'pooled checkEntitlement and recordUsage (a member drawing on its parent’s capped HARD pool) beside unpooled ones',
  async run(context) {
    const { ownerId, memberId, plainId } = await seedPool(context, Date.now().toString(36));
    context.report(`pooled decision: ${JSON.stringify((await context.graphql(check(memberId))).checkEntitlement)}`);
    const { rate } = context.options;
    for (const [label, accountId] of [
      ['checkEntitlement unpooled', plainId],
      ['checkEntitlement pooled member', memberId],
    ] as const) {
      const run = await context.load({ kind: 'graphql', url: context.allotment.url, body: JSON.stringify({ query: check(accountId) }) });
      context.report(describeLoad(label, rate, run).line);
    }

    // recordUsage one at a time (latency), interleaved pooled / unpooled.
    const rounds = Number(process.env.BENCH_POOL_ROUNDS ?? 300);
    const latencies = { plain: [] as number[], pooled: [] as number[] };
    for (let i = 0; i < rounds; i++) {
      for (const [kind, accountId] of [
        ['plain', plainId],
        ['pooled', memberId],
      ] as const) {
        const started = performance.now();
        const result = await context.graphql(RECORD, {
          input: { accountId, feature: 'api_calls', quantity: '1', idempotencyKey: `pool-bench-${kind}-${i}` },
        });
        if (result.recordUsage.status !== 'ACCEPTED') throw new Error(`recordUsage ${kind}: ${JSON.stringify(result)}`);
        latencies[kind].push(performance.now() - started);
      }
    }
    const pct = (values: number[], p: number) =>
      [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * p))]!;
    for (const kind of ['plain', 'pooled'] as const) {
      const values = latencies[kind];
      context.report(
        `recordUsage ${kind === 'plain' ? 'unpooled' : 'pooled member'}`.padEnd(34) +
          `${rounds} sequential  p50 ${pct(values, 0.5).toFixed(2)} ms  p99 ${pct(values, 0.99).toFixed(2)} ms`,
      );
    }

    // recordUsageBatch of 1,000 events, interleaved pooled / unpooled.
    const batches = Number(process.env.BENCH_POOL_BATCHES ?? 10);
    const elapsed = { plain: 0, pooled: 0 };
    for (let b = 0; b < batches + 2; b++) {
      for (const [kind, accountId] of [
        ['plain', plainId],
        ['pooled', memberId],
      ] as const) {
        const events = Array.from({ length: 1_000 }, (_, i) => ({
          accountId,
          feature: 'api_calls',
          quantity: '1',
          idempotencyKey: `pool-batch-${kind}-${b}-${i}`,
        }));
        const started = performance.now();
        const result = await context.graphql(RECORD_BATCH, { events });
        if (result.recordUsageBatch.accepted !== 1_000) throw new Error(`batch ${kind}: ${JSON.stringify(result)}`);
        if (b >= 2) elapsed[kind] += performance.now() - started;
      }
    }
    for (const kind of ['plain', 'pooled'] as const) {
      context.report(
        `recordUsageBatch ${kind === 'plain' ? 'unpooled' : 'pooled member'}`.padEnd(34) +
          `${((batches * 1_000) / (elapsed[kind] / 1000)).toFixed(0)} events/s (${(elapsed[kind] / batches).toFixed(1)} ms per 1,000-event batch)`,
      );
    }
    const counter = await context.allotment.database.db.collection('usage_counters').findOne({ accountId: ownerId });
    context.report(
      `pool counter used ${counter?.used} micro-units (members' shares: ${JSON.stringify(counter?.members ?? {}, (_k, v) => (typeof v === 'bigint' ? String(v) : v))})`,
    );
  },
};
