/**
 * `npm run stack` as a user runs it: one real process that starts the embedded database,
 * Allotment, the accounts subgraph and the Hive Gateway CLI. docs/api.md's examples run
 * through the gateway as written, a subscription on the gateway's graphql-ws endpoint gets
 * its alert, and SIGTERM stops every part and exits 0.
 */
import { readFileSync } from 'node:fs';
import { type OperationDefinitionNode, parse, print } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, liveClient, waitFor } from '../alerts/live-client.js';
import { isAlive, type RunningStack, startStack } from '../support/stack.js';

let stack: RunningStack | undefined;

beforeAll(async () => {
  stack = await startStack();
}, 150_000);
afterAll(async () => {
  if (stack && stack.process.exitCode === null) await stack.stop();
});

async function viaGateway(query: string, token: string, variables: Record<string, unknown> = {}) {
  const response = await fetch(stack!.info.gatewayUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  return { status: response.status, requestId: response.headers.get('x-request-id'), body: (await response.json()) as any };
}

function apiDocOperations(): OperationDefinitionNode[] {
  const doc = readFileSync(new URL('../../docs/api.md', import.meta.url), 'utf8');
  const blocks = [...doc.matchAll(/```graphql\n([\s\S]*?)```/g)].map((match) => match[1]!);
  return blocks.flatMap((block) => parse(block).definitions as OperationDefinitionNode[]);
}

describe('npm run stack', () => {
  it("runs docs/api.md's examples through the gateway as written, subscription included", async () => {
    const { tokens, gatewayWsUrl } = stack!.info;
    const operations = apiDocOperations();
    expect(operations.length).toBeGreaterThanOrEqual(8);
    for (const operation of operations.filter((op) => op.operation !== 'subscription')) {
      const { status, body } = await viaGateway(print(operation), tokens.operator);
      expect({ status, errors: body.errors }, print(operation)).toEqual({ status: 200, errors: undefined });
    }
    const account = await viaGateway('{ account(id: "acct_1001") { name entitlement(feature: "api_calls") { used } } }', tokens.operator);
    expect(account.body.data.account).toEqual({ name: 'Acme API Co', entitlement: { used: '1500' } });

    const subscription = operations.find((op) => op.operation === 'subscription')!;
    const client = liveClient(gatewayWsUrl, tokens.customer);
    try {
      const alerts = collect<any>(client, print(subscription), {}, 'usageAlerts');
      await new Promise((resolve) => setTimeout(resolve, 1_000)); // the gateway subscribes upstream
      const recorded = await viaGateway(
        'mutation { recordUsage(input: { accountId: "acct_1001", feature: "api_calls", quantity: "8100000", idempotencyKey: "stack-test-80" }) { status } }',
        tokens.operator,
      );
      expect(recorded.body.data.recordUsage.status).toBe('ACCEPTED');
      await waitFor(() => alerts.events.length >= 1, 15_000, 'the 80 % alert through the gateway');
      expect(alerts.events[0]).toMatchObject({ threshold: 80, used: '8101500', capacity: '10010000' });
      expect(alerts.errorPayloads).toEqual([]);
    } finally {
      await client.dispose();
    }
  });

  it('echoes a request id and refuses a customer token outside its account', async () => {
    const refused = await viaGateway(
      '{ account(id: "acct_4821") { entitlement(feature: "api_calls") { used } } }',
      stack!.info.tokens.customer,
    );
    expect(refused.requestId).toMatch(/.+/);
    expect(refused.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  });

  it('stops every part on SIGTERM and exits 0', async () => {
    const children = stack!.children();
    expect(children.length).toBeGreaterThanOrEqual(3); // Allotment, accounts, gateway (and mongo-java-server)
    expect(await stack!.stop()).toBe(0);
    for (const pid of children) expect(isAlive(pid), `pid ${pid}`).toBe(false);
    expect(stack!.output()).toContain('stack stopped');
  });
});
