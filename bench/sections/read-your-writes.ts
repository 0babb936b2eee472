/**
 * SPEC §4: "a check right after a recordUsage sees it". Runs only when this build has the
 * usage module's recordUsage mutation.
 */
import { summarize, type BenchSection } from '../harness.js';
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
    const accountId = `acct_rw_${Date.now().toString(36)}`;
    await seedContract(context, accountId);
    let stale = 0;
    const checkLatencies: number[] = [];
    for (let i = 1; i <= ROUNDS; i++) {
      await context.graphql(`mutation ($input: UsageEventInput!) { recordUsage(input: $input) { status } }`, {
        input: { accountId, feature: 'api_calls', quantity: '1', idempotencyKey: `rw-${i}` },
      });
      const started = performance.now();
      const { checkEntitlement } = await context.graphql(
        `query ($accountId: ID!) { checkEntitlement(accountId: $accountId, feature: "api_calls") { used } }`,
        { accountId },
      );
      checkLatencies.push(performance.now() - started);
      if (checkEntitlement.used !== String(i)) stale++;
    }
    const latency = summarize(Float64Array.from(checkLatencies));
    context.report(
      `read-your-writes: ${ROUNDS - stale}/${ROUNDS} checks saw the usage just recorded` +
        ` (check right after write: p50 ${latency.p50.toFixed(2)} ms, p99 ${latency.p99.toFixed(2)} ms)${stale ? `  ${stale} STALE` : ''}`,
    );
  },
};
