/**
 * What a platform team scrapes and greps: per-operation counts and latency, business
 * counters with bounded labels (no account ids), and the request id echoed as
 * `x-request-id` and carried by the log lines the request wrote.
 */
import type { Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alertingAccount, defineMeteredFeature, FEATURE, type AlertingAccount } from '../alerts/fixtures.js';
import { collect, liveClient, USAGE_ALERTS, waitFor } from '../alerts/live-client.js';
import { signToken, startTestInstance, type TestInstance } from '../support/harness.js';

const lines: Array<Record<string, unknown>> = [];
let allotment: TestInstance;
let account: AlertingAccount;
let client: Client;

beforeAll(async () => {
  allotment = await startTestInstance({
    env: { LOG_LEVEL: 'info' },
    logDestination: { write: (line) => lines.push(JSON.parse(line) as Record<string, unknown>) },
  });
  await defineMeteredFeature(allotment);
  account = await alertingAccount(allotment);
});
afterAll(async () => {
  await client?.dispose();
  await allotment?.stop();
});

const RECORD = `mutation ($input: UsageEventInput!) { recordUsage(input: $input) { status } }`;

async function record(quantity: string, idempotencyKey: string, requestId?: string, accountId = account.accountId) {
  const response = await fetch(allotment.url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      authorization: `Bearer ${await signToken()}`,
      ...(requestId ? { 'x-request-id': requestId } : {}),
    },
    body: JSON.stringify({ query: RECORD, variables: { input: { accountId, feature: FEATURE, quantity, idempotencyKey } } }),
  });
  return { requestId: response.headers.get('x-request-id'), body: (await response.json()) as any };
}

function metric(text: string, name: string, labels = ''): number {
  const line = text.split('\n').find((row) => row.startsWith(`${name}${labels ? `{${labels}}` : ''} `));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

describe('observability', () => {
  it('counts operations and business events with bounded labels, and tags the request’s log lines with its id', async () => {
    client = liveClient(allotment.wsUrl, await signToken({ scope: 'entitlements:read', account_id: account.accountId }));
    const alerts = collect<any>(client, USAGE_ALERTS, { accountId: account.accountId }, 'usageAlerts');
    await waitFor(() => allotment.services.live.hub.listenerCounts().alerts === 1, 5_000, 'the subscription');

    const accepted = await record('85', 'obs-1', 'obs-request-1');
    expect(accepted).toEqual({ requestId: 'obs-request-1', body: { data: { recordUsage: { status: 'ACCEPTED' } } } });
    expect((await record('85', 'obs-1')).body.data.recordUsage.status).toBe('DUPLICATE');
    expect((await record('1', 'obs-2', undefined, 'acct_without_contract')).body.data.recordUsage.status).toBe('REJECTED');
    const generated = await record('-1', 'obs-3', 'not a valid id!');
    expect(generated.body.errors[0].extensions.code).toBe('BAD_USER_INPUT');
    expect(generated.requestId).toMatch(/^[0-9a-f-]{36}$/);
    await waitFor(() => alerts.events.length === 1, 10_000, 'the 80 % alert');

    const text = await (await fetch(allotment.url.replace(/\/graphql$/, '/metrics'))).text();
    expect(metric(text, 'allotment_graphql_operations_total', 'operation="recordUsage",type="mutation",outcome="ok"')).toBe(3);
    expect(metric(text, 'allotment_graphql_operations_total', 'operation="recordUsage",type="mutation",outcome="error"')).toBe(1);
    expect(metric(text, 'allotment_graphql_operation_duration_seconds_count', 'operation="recordUsage",type="mutation"')).toBe(4);
    expect(metric(text, 'allotment_usage_events_total', 'status="ACCEPTED"')).toBe(1);
    expect(metric(text, 'allotment_usage_events_total', 'status="DUPLICATE"')).toBe(1);
    expect(metric(text, 'allotment_usage_events_total', 'status="REJECTED"')).toBe(1);
    expect(metric(text, 'allotment_alerts_fired_total')).toBe(1);
    expect(metric(text, 'allotment_alerts_delivered_total')).toBe(1);
    expect(metric(text, 'allotment_subscriber_overflows_total')).toBe(0);
    expect(text).not.toContain(account.accountId);
    expect(text).not.toContain('acct_without_contract');

    const fired = lines.filter((line) => line.msg === 'usage alerts fired');
    expect(fired).toHaveLength(1);
    expect(fired[0]!.requestId).toBe('obs-request-1');
  });
});
