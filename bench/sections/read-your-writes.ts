/**
 * SPEC §4: "a check right after a recordUsage sees it". Runs only when this build has the
 * usage module's recordUsage mutation.
 */
import { startAllotment } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { summarize, type BenchContext, type BenchSection } from '../harness.js';
import { seedContract } from './seed.js';

const ROUNDS = 200;

export const readYourWritesSection: BenchSection = {
  name: 'read-your-writes',
  description: 'recordUsage then checkEntitlement at once: the check must see the usage',
  async run(context) {
    const { __type } = await context.graphql(`{ __type(name: "Mutation") { fields { name } } }`);
    if (!__type?.fields.some((field: { name: string }) => field.name === 'recordUsage')) {
      context.report('skipped: this build has no recordUsage mutation yet');
      return;
    }
    // The reader is this instance, then a second instance on the same database.
    const config = loadConfig({ NODE_ENV: 'development', PORT: '0', MONGODB_DB: context.dbName, LOG_LEVEL: 'silent' });
    const other = await startAllotment({ config, logger: createLogger('silent'), mongodbUri: context.database.uri });
    try {
      for (const [where, url] of [
        ['same instance', context.allotment.url],
        ['another instance', other.url],
      ] as const) {
        const { stale, latency } = await roundsOf(context, url, where.replace(' ', '_'));
        context.target({
          name: `read-your-writes, ${where}`,
          figure: `${ROUNDS - stale}/${ROUNDS} checks saw the usage just recorded (check p50 ${latency.p50.toFixed(2)} ms, p99 ${latency.p99.toFixed(2)} ms)`,
          baseline: '',
          ratio: '',
          target: `${ROUNDS}/${ROUNDS}`,
          met: stale === 0,
        });
      }
    } finally {
      await other.stop();
    }
  },
};

/** recordUsage on this instance, then at once checkEntitlement on `readerUrl`. */
async function roundsOf(context: BenchContext, readerUrl: string, tag: string) {
  const accountId = `acct_rw_${tag}_${Date.now().toString(36)}`;
  await seedContract(context, accountId);
  let stale = 0;
  const checkLatencies: number[] = [];
  for (let i = 1; i <= ROUNDS; i++) {
    await context.graphql(`mutation ($input: UsageEventInput!) { recordUsage(input: $input) { status } }`, {
      input: { accountId, feature: 'api_calls', quantity: '1', idempotencyKey: `rw-${i}` },
    });
    const started = performance.now();
    const response = await fetch(readerUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        query: `query ($accountId: ID!) { checkEntitlement(accountId: $accountId, feature: "api_calls") { used } }`,
        variables: { accountId },
      }),
    });
    const body = (await response.json()) as { data?: { checkEntitlement: { used: string } } };
    checkLatencies.push(performance.now() - started);
    if (body.data?.checkEntitlement.used !== String(i)) stale++;
  }
  return { stale, latency: summarize(Float64Array.from(checkLatencies)) };
}
