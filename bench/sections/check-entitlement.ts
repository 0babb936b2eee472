/**
 * SPEC §4: checkEntitlement over HTTP, p99 ≤ 5 ms at 2,000 req/s. Measured beside the
 * floors it stands on, at the same offered rate in the same run: the HTTP and Apollo path
 * alone (`{ __typename }`), and a raw driver point read (findOne by _id on the counters
 * collection) on the same database. A check is three such reads (contracts, then the
 * counter and the grants together).
 */
import { performance } from 'node:perf_hooks';
import { counterId, type CounterDoc } from '../../src/modules/usage/counters.js';
import { describeLoad, type BenchSection } from '../harness.js';
import { seedContract } from './seed.js';

const ACCOUNT = 'acct_bench';
const FEATURE = 'bulk_export';
const CHECK = `query { checkEntitlement(accountId: "${ACCOUNT}", feature: "${FEATURE}", requestedUnits: "1") { allowed reason used capacity remaining } }`;

export const checkEntitlementSection: BenchSection = {
  name: 'check-entitlement',
  description: 'checkEntitlement over HTTP vs a raw driver findOne by _id, same rate, same database',
  async run(context) {
    await seedContract(context, ACCOUNT);
    // Usage as the usage module would have counted it: 47,210 of 50,000 in the current period.
    const { _entities } = await context.graphql(
      `query { _entities(representations: [{ __typename: "Account", id: "${ACCOUNT}" }]) { ... on Account { entitlement(feature: "${FEATURE}") { periodStart periodEnd } } } }`,
    );
    const periodStart = new Date(_entities[0].entitlement.periodStart);
    const id = counterId(ACCOUNT, FEATURE, periodStart);
    const now = new Date();
    await context.allotment.database.db.collection<CounterDoc>('usage_counters').updateOne(
      { _id: id },
      {
        $setOnInsert: {
          accountId: ACCOUNT,
          feature: FEATURE,
          periodStart,
          periodEnd: new Date(_entities[0].entitlement.periodEnd),
          used: 47_210_000_000n,
          hours: {},
          pending: [],
          createdAt: now,
          updatedAt: now,
        },
      },
      { upsert: true },
    );
    const sample = await context.graphql(CHECK);
    context.report(`decision: ${JSON.stringify(sample.checkEntitlement)}`);

    const { rate, seconds } = context.options;
    // The server runs on this thread: its event-loop utilisation says whether it or the database is the limit.
    const busyBefore = performance.eventLoopUtilization();
    const http = describeLoad(
      'checkEntitlement (HTTP, GraphQL)',
      rate,
      await context.load({ kind: 'graphql', url: context.allotment.url, body: JSON.stringify({ query: CHECK }) }),
    );
    const busy = performance.eventLoopUtilization(busyBefore);
    context.report(http.line);
    context.report(`  server event loop busy ${(busy.utilization * 100).toFixed(0)}% during the run (warm-up included)`);
    // The transport floor: the same HTTP and Apollo path with no resolver and no database.
    const floorBefore = performance.eventLoopUtilization();
    const floor = describeLoad(
      '{ __typename } (HTTP, GraphQL)',
      rate,
      await context.load({ kind: 'graphql', url: context.allotment.url, body: JSON.stringify({ query: '{ __typename }' }) }),
    );
    context.report(floor.line);
    context.report(
      `  server event loop busy ${(performance.eventLoopUtilization(floorBefore).utilization * 100).toFixed(0)}% during the run (warm-up included)`,
    );
    const driver = describeLoad(
      'raw driver findOne({_id}) counters',
      rate,
      await context.load({ kind: 'mongo-find-by-id', uri: context.database.uri, dbName: context.dbName, collection: 'usage_counters', id }),
    );
    context.report(driver.line);
    context.report(
      `ratio checkEntitlement / raw read: p50 ${(http.fromSend.p50 / driver.fromSend.p50).toFixed(1)}x, p99 ${(http.fromSend.p99 / driver.fromSend.p99).toFixed(1)}x ` +
        `over ${seconds}s at ${rate}/s on ${context.database.engine}`,
    );
    context.report(
      `target p99 ≤ 5 ms at 2,000 req/s: ${http.fromSend.p99 <= 5 && rate >= 2000 ? 'met' : 'NOT met'} (p99 ${http.fromSend.p99.toFixed(2)} ms)`,
    );
  },
};
