/**
 * SPEC §4: checkEntitlement over HTTP, p99 ≤ 5 ms at 2,000 req/s. Measured beside the
 * floors it stands on, at the same offered rate in the same run: the HTTP and Apollo path
 * alone (`{ __typename }`), and a raw driver point read (findOne by _id on the counters
 * collection) on the same database. A check is three such reads (contracts, then the
 * counter and the grants together).
 */
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

    const { rate, seconds, warmupSeconds } = context.options;
    // Requests answered during warm-up are not in `completed`: scale by the measured share.
    const answeredDuring = (completed: number) => completed * ((warmupSeconds + seconds) / seconds);
    const run = async (label: string, query: string) => {
      const { value, busy, cpuMs } = await context.measured(label, () =>
        context.load({ kind: 'graphql', url: context.allotment.url, body: JSON.stringify({ query }) }),
      );
      return { value, busy, perRequestMs: cpuMs / answeredDuring(value.completed) };
    };
    // The server runs on this thread: its CPU time per request is what a check costs,
    // robust to other work on the machine (unlike latency).
    const check = await run('check-open', CHECK);
    const http = describeLoad('checkEntitlement (HTTP, GraphQL)', rate, check.value);
    context.report(http.line);
    context.report(`  server event loop busy ${(check.busy * 100).toFixed(0)}%, ${check.perRequestMs.toFixed(3)} ms CPU per check`);
    // The transport floor: the same HTTP and Apollo path with no resolver and no database.
    const typename = await run('typename-open', '{ __typename }');
    const floor = describeLoad('{ __typename } (HTTP, GraphQL)', rate, typename.value);
    context.report(floor.line);
    context.report(`  server event loop busy ${(typename.busy * 100).toFixed(0)}%, ${typename.perRequestMs.toFixed(3)} ms CPU per request`);
    const driver = describeLoad(
      'raw driver findOne({_id}) counters',
      rate,
      await context.load({ kind: 'mongo-find-by-id', uri: context.database.uri, dbName: context.dbName, collection: 'usage_counters', id }),
    );
    context.report(driver.line);
    const p99Ratio = http.fromSend.p99 / driver.fromSend.p99;
    context.target({
      name: `checkEntitlement p99 at ${rate}/s`,
      figure: `p99 ${http.fromSend.p99.toFixed(2)} ms (achieved ${http.achieved.toFixed(0)}/s)`,
      baseline: `findOne p99 ${driver.fromSend.p99.toFixed(2)} ms`,
      ratio: `${p99Ratio.toFixed(1)}x`,
      target: '≤ 3x',
      met: p99Ratio <= 3 && http.achieved >= rate * 0.97,
    });
    context.target({
      name: `checkEntitlement p50 at ${rate}/s`,
      figure: `p50 ${http.fromSend.p50.toFixed(2)} ms`,
      baseline: `findOne p50 ${driver.fromSend.p50.toFixed(2)} ms`,
      ratio: `${(http.fromSend.p50 / driver.fromSend.p50).toFixed(1)}x`,
      target: '≤ 2 ms',
      met: http.fromSend.p50 <= 2,
    });

    // Closed loop: the most checks the instance sustains, against the most `{ __typename }`.
    const callers = Number(process.env.BENCH_CLOSED_LOOP_CALLERS ?? 32);
    const ceiling = async (label: string, query: string) => {
      const { value, cpuMs } = await context.measured(label, () =>
        context.load({ kind: 'graphql', url: context.allotment.url, body: JSON.stringify({ query }) }, { closedLoop: callers }),
      );
      const described = describeLoad(`${label} (${callers} callers)`, 0, value);
      // Requests answered during warm-up are not in `completed`: scale by the measured share.
      const answered = value.completed * ((context.options.warmupSeconds + context.options.seconds) / context.options.seconds);
      return { ...described, cpuPerRequest: cpuMs / answered };
    };
    const checksMax = await ceiling('check-closed', CHECK);
    context.report(`${checksMax.line}\n  ≈ ${checksMax.cpuPerRequest.toFixed(3)} ms server CPU per check`);
    const typenameMax = await ceiling('typename-closed', '{ __typename }');
    context.report(`${typenameMax.line}\n  ≈ ${typenameMax.cpuPerRequest.toFixed(3)} ms server CPU per request`);
    context.report(
      `server CPU per check / per { __typename }: ${(checksMax.cpuPerRequest / typenameMax.cpuPerRequest).toFixed(2)}x ` +
        `(the ceiling ratio this predicts when the server's thread is the limit: ${((typenameMax.cpuPerRequest / checksMax.cpuPerRequest) * 100).toFixed(0)} %)`,
    );
    const share = checksMax.achieved / typenameMax.achieved;
    context.target({
      name: 'max sustained checks, closed loop',
      figure: `${checksMax.achieved.toFixed(0)} checks/s`,
      baseline: `{ __typename } ${typenameMax.achieved.toFixed(0)}/s`,
      ratio: `${(share * 100).toFixed(0)} %`,
      target: '≥ 80 %',
      met: share >= 0.8,
    });
  },
};
