/**
 * Issue 19: single-event recordUsage, the most common call, at BENCH_USAGE_RATE (default
 * 1,000/s) open loop over BENCH_USAGE_ACCOUNTS accounts (100), against what one posting costs the database at least: a raw
 * insertOne of the event plus an updateOne `$inc` of one of as many counters, one after the other, at
 * the same rate in the same run. Then the single-counter ceiling (docs/scaling.md): many
 * concurrent single-event recordUsage calls on one account, closed loop, against raw
 * `$inc` on one document, closed loop.
 */
import { describeLoad, type BenchSection } from '../harness.js';
import { seedContract } from './seed.js';

const RECORD = `mutation ($input: UsageEventInput!) { recordUsage(input: $input) { status } }`;

function recordBody(accountId: string, feature: string): string {
  return JSON.stringify({ query: RECORD, variables: { input: { accountId, feature, quantity: '1', idempotencyKey: 'ru-%N%' } } });
}

export const usageSingleSection: BenchSection = {
  name: 'usage-single',
  description: 'single-event recordUsage at 1,000/s vs raw insertOne + updateOne($inc); one hot counter vs raw $inc on one document',
  async run(context) {
    const rate = Number(process.env.BENCH_USAGE_RATE ?? 1000);
    const stamp = Date.now().toString(36);
    // Spread over accounts, as a service's traffic is; one hot account is measured below.
    const accounts = Number(process.env.BENCH_USAGE_ACCOUNTS ?? 100);
    for (let i = 0; i < accounts; i++) await seedContract(context, `acct_single_${stamp}_${i}`);
    const { uri } = context.database;
    const { dbName } = context;

    const api = await context.measured('record-open', () =>
      context.load(
        { kind: 'graphql', url: context.allotment.url, body: recordBody(`acct_single_${stamp}_%K%`, 'api_calls'), spread: accounts },
        { rate },
      ),
    );
    const http = describeLoad('recordUsage (HTTP, GraphQL)', rate, api.value);
    context.report(http.line);
    context.report(
      `  server event loop busy ${(api.busy * 100).toFixed(0)}%, ${(api.cpuMs / ((api.value.completed * (context.options.seconds + context.options.warmupSeconds)) / context.options.seconds)).toFixed(3)} ms CPU per event`,
    );
    const raw = describeLoad(
      'raw insertOne + updateOne($inc)',
      rate,
      await context.load(
        { kind: 'mongo-insert-and-inc', uri, dbName, collection: `bench_raw_single_${stamp}`, counterId: 'c', spread: accounts },
        { rate },
      ),
    );
    context.report(raw.line);
    const ratio = http.fromSend.p99 / raw.fromSend.p99;
    context.target({
      name: `recordUsage (one event) p99 at ${rate}/s`,
      figure: `p99 ${http.fromSend.p99.toFixed(2)} ms, p50 ${http.fromSend.p50.toFixed(2)} ms (achieved ${http.achieved.toFixed(0)}/s)`,
      baseline: `insertOne+updateOne p99 ${raw.fromSend.p99.toFixed(2)} ms, p50 ${raw.fromSend.p50.toFixed(2)} ms`,
      ratio: `${ratio.toFixed(1)}x`,
      target: '≤ 4x',
      met: ratio <= 4 && http.achieved >= rate * 0.97 && !api.value.errors,
    });

    // The hot document: every posting of one account's feature updates one counter.
    const callers = Number(process.env.BENCH_HOT_CALLERS ?? 64);
    const hotAccount = `acct_hot_${stamp}`;
    await seedContract(context, hotAccount);
    const hot = describeLoad(
      `recordUsage, one account (${callers} callers)`,
      0,
      (
        await context.measured('record-hot-closed', () =>
          context.load(
            { kind: 'graphql', url: context.allotment.url, body: recordBody(hotAccount, 'bulk_export') },
            { closedLoop: callers },
          ),
        )
      ).value,
    );
    context.report(hot.line);
    const inc = describeLoad(
      `raw $inc on one document (${callers} callers)`,
      0,
      await context.load({ kind: 'mongo-inc-one', uri, dbName, collection: `bench_raw_hot_${stamp}`, id: 'hot' }, { closedLoop: callers }),
    );
    context.report(inc.line);
    context.report(
      `CEILING one counter: ${hot.achieved.toFixed(0)} postings/s vs raw $inc ${inc.achieved.toFixed(0)}/s on one document = ${((hot.achieved / inc.achieved) * 100).toFixed(0)} % (no target: docs/scaling.md)`,
    );
  },
};
