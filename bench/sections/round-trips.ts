/**
 * Issue 19: database round trips of one checkEntitlements request with 100 pairs, plain
 * and pooled together, counted with the driver's command monitoring on a second instance
 * (so monitoring costs the measured instance nothing). The second of two identical
 * requests is counted: by then immutable plan versions and feature types are cached.
 * Background passes tag their commands with a `comment` and are not counted.
 */
import type { CommandStartedEvent } from 'mongodb';
import { startAllotment } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import type { BenchSection } from '../harness.js';
import { seedContract, seedPooledPlan } from './seed.js';

const CHECKS = `query ($checks: [EntitlementCheckInput!]!) { checkEntitlements(checks: $checks) { allowed reason used } }`;

export const roundTripsSection: BenchSection = {
  name: 'round-trips',
  description: 'database commands of one checkEntitlements request with 100 pairs (plain and pooled)',
  async run(context) {
    const stamp = Date.now().toString(36);
    await seedPooledPlan(context);
    const owner = `acct_rt_owner_${stamp}`;
    await context.graphql(`mutation ($input: ContractInput!) { upsertContract(input: $input) { id } }`, {
      input: { id: `ctr_${owner}`, accountId: owner, planKey: 'growth_pool', startsAt: '2026-01-31T00:00:00Z' },
    });
    const checks: Array<{ accountId: string; feature: string }> = [];
    for (let i = 0; i < 30; i++) {
      const accountId = `acct_rt_${stamp}_${i}`;
      await seedContract(context, accountId);
      checks.push({ accountId, feature: 'api_calls' }, { accountId, feature: 'bulk_export' });
    }
    for (let i = 0; checks.length < 100; i++) {
      const member = `acct_rt_member_${stamp}_${i}`;
      await context.graphql(`mutation { setAccountParent(accountId: "${member}", parentId: "${owner}") { id } }`);
      if (i % 2 === 0)
        await context.graphql(`mutation { setAccountLimit(accountId: "${member}", feature: "api_calls", limit: "1000") { id } }`);
      checks.push({ accountId: member, feature: 'api_calls' });
    }

    const config = loadConfig({ NODE_ENV: 'development', PORT: '0', MONGODB_DB: context.dbName, LOG_LEVEL: 'silent' });
    const counted = await startAllotment({
      config,
      logger: createLogger('silent'),
      mongodbUri: context.database.uri,
      clientOptions: { monitorCommands: true },
    });
    const commands: CommandStartedEvent[] = [];
    counted.database.client.on('commandStarted', (event) => commands.push(event));
    try {
      const send = async () => {
        const response = await fetch(counted.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ query: CHECKS, variables: { checks } }),
        });
        const body = (await response.json()) as { data?: { checkEntitlements: Array<{ reason: string }> }; errors?: unknown };
        if (body.errors || body.data?.checkEntitlements.length !== checks.length)
          throw new Error(`checkEntitlements failed: ${JSON.stringify(body).slice(0, 300)}`);
        return body.data.checkEntitlements;
      };
      await send();
      const from = commands.length;
      const answers = await send();
      const request = commands.slice(from).filter((event) => event.command.comment === undefined);
      const byName = new Map<string, number>();
      for (const event of request) {
        const key = `${event.commandName} ${String(event.command[event.commandName])}`;
        byName.set(key, (byName.get(key) ?? 0) + 1);
      }
      const pooled = checks.length - 60;
      context.report(
        `${checks.length} pairs (${60} on own contracts, ${pooled} pooled members, half of them capped): reasons ${JSON.stringify(
          Object.fromEntries(
            [...new Set(answers.map((a) => a.reason))].map((reason) => [reason, answers.filter((a) => a.reason === reason).length]),
          ),
        )}`,
      );
      context.report(`commands: ${[...byName].map(([key, count]) => `${key} x${count}`).join(', ')}`);
      context.target({
        name: 'checkEntitlements(100 pairs) round trips, pooled included',
        figure: `${request.length} commands`,
        baseline: '',
        ratio: '',
        target: '≤ 3 (credit-burning pairs: test/entitlements/round-trips.test.ts)',
        met: request.length <= 3,
      });
      // What one single-event recordUsage sends, for docs/performance.md (raw floor: 2 writes).
      const record = async (key: string) => {
        const response = await fetch(counted.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            query: `mutation ($input: UsageEventInput!) { recordUsage(input: $input) { status } }`,
            variables: { input: { accountId: checks[0]!.accountId, feature: 'api_calls', quantity: '1', idempotencyKey: key } },
          }),
        });
        await response.json();
      };
      await record(`rt-warm-${stamp}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
      const before = commands.length;
      await record(`rt-${stamp}`);
      // Housekeeping after the answer (the pending entry's pull) belongs to the posting too.
      await new Promise((resolve) => setTimeout(resolve, 200));
      const posting = commands.slice(before).filter((event) => event.command.comment === undefined);
      context.report(
        `one recordUsage: ${posting.length} commands (${posting.map((event) => `${event.commandName} ${String(event.command[event.commandName])}`).join(', ')})`,
      );
    } finally {
      await counted.stop();
    }
  },
};
