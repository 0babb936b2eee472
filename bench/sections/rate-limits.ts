/**
 * R19: the cost of a rate limit on recordUsage. Every request of a rate-limited
 * entitlement first updates its (account, feature, window) document with a guarded
 * `$inc`, so all requests of an account in one window contend on one hot document, and a
 * request pays one more round trip (plus the entry's pull after the response).
 *
 * Measured closed-loop (BENCH_RATE_CONCURRENCY in flight, default 16, each request with
 * its own idempotency key), alternating rounds of the same feature with and without a
 * rate limit (one that never refuses, 1,000,000,000 per HOUR, so the figure is the
 * window's cost, not the refusals'), for BENCH_SECONDS in all.
 */
import { describeLoad, type BenchSection } from '../harness.js';
import type { LoadResult } from '../load.js';
import { seedGrowthPlan } from './seed.js';

const RECORD = `mutation ($input: UsageEventInput!) { recordUsage(input: $input) { status reason } }`;
const ROUNDS = 6;

async function seedAccount(context: Parameters<BenchSection['run']>[0], accountId: string, planKey: string, rateLimited: boolean) {
  await context.graphql(`mutation ($input: PlanInput!) { publishPlan(input: $input) { version } }`, {
    input: {
      key: planKey,
      name: planKey,
      currency: 'USD',
      entitlements: [
        {
          feature: 'api_calls',
          included: '1000000000',
          enforcement: 'HARD',
          ...(rateLimited ? { rateLimit: { limit: '1000000000', window: 'HOUR' } } : {}),
        },
      ],
    },
  });
  await context.graphql(`mutation ($input: ContractInput!) { upsertContract(input: $input) { id } }`, {
    input: { id: `ctr_${accountId}`, accountId, planKey, startsAt: '2026-01-01T00:00:00Z' },
  });
}

/** Sends recordUsage closed-loop for `seconds`; latencies from send. */
async function closedLoop(url: string, accountId: string, seconds: number, concurrency: number, prefix: string): Promise<LoadResult> {
  const samples: number[] = [];
  let errors = 0;
  let firstError: string | null = null;
  let sequence = 0;
  const started = performance.now();
  const deadline = started + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline) {
        const input = { accountId, feature: 'api_calls', quantity: '1', idempotencyKey: `${prefix}-${sequence++}` };
        const sent = performance.now();
        const response = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ query: RECORD, variables: { input } }),
        });
        const body = (await response.json()) as { data?: { recordUsage: { status: string } }; errors?: unknown[] };
        samples.push(performance.now() - sent);
        if (body.errors || body.data?.recordUsage.status !== 'ACCEPTED') {
          errors++;
          firstError ??= JSON.stringify(body).slice(0, 200);
        }
      }
    }),
  );
  const latencies = Float64Array.from(samples);
  return {
    sent: samples.length,
    completed: samples.length,
    errors,
    dropped: 0,
    firstError,
    elapsedSeconds: (performance.now() - started) / 1000,
    fromSend: latencies,
    fromDue: latencies,
  };
}

export const rateLimitsSection: BenchSection = {
  name: 'rate-limits',
  description: 'recordUsage on a rate-limited feature (one hot window document) vs the same feature without a rate limit',
  async run(context) {
    await seedGrowthPlan(context);
    const suffix = Date.now().toString(36);
    const plain = `acct_plain_${suffix}`;
    const limited = `acct_limited_${suffix}`;
    await seedAccount(context, plain, `bench_plain_${suffix}`, false);
    await seedAccount(context, limited, `bench_limited_${suffix}`, true);
    const concurrency = Number(process.env.BENCH_RATE_CONCURRENCY ?? 16);
    const slice = context.options.seconds / (2 * ROUNDS);
    const results: Record<'plain' | 'limited', LoadResult[]> = { plain: [], limited: [] };
    // Warm-up, then alternating rounds: both see the same database and JIT weather.
    await closedLoop(context.allotment.url, plain, context.options.warmupSeconds / 2, concurrency, 'warm-p');
    await closedLoop(context.allotment.url, limited, context.options.warmupSeconds / 2, concurrency, 'warm-l');
    for (let round = 0; round < ROUNDS; round++) {
      results.plain.push(await closedLoop(context.allotment.url, plain, slice, concurrency, `p${round}`));
      results.limited.push(await closedLoop(context.allotment.url, limited, slice, concurrency, `l${round}`));
    }
    const merged = (runs: LoadResult[]): LoadResult => ({
      ...runs[0]!,
      completed: runs.reduce((sum, run) => sum + run.completed, 0),
      errors: runs.reduce((sum, run) => sum + run.errors, 0),
      elapsedSeconds: runs.reduce((sum, run) => sum + run.elapsedSeconds, 0),
      fromSend: Float64Array.from(runs.flatMap((run) => [...run.fromSend])),
      fromDue: Float64Array.from(runs.flatMap((run) => [...run.fromSend])),
      firstError: runs.find((run) => run.firstError)?.firstError ?? null,
    });
    const without = describeLoad('recordUsage, no rate limit', concurrency, merged(results.plain));
    const withLimit = describeLoad('recordUsage, rate limit (hot window)', concurrency, merged(results.limited));
    context.report(`closed loop, ${concurrency} in flight (the "offered" column is the concurrency)`);
    context.report(without.line);
    context.report(withLimit.line);
    const cost = withLimit.fromSend.p50 - without.fromSend.p50;
    context.report(
      `  the window costs ${cost.toFixed(2)} ms at p50 and ${((1 - withLimit.achieved / without.achieved) * 100).toFixed(0)}% of throughput`,
    );
  },
};
