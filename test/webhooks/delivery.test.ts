/**
 * R21 end to end: threshold crossings become Standard Webhooks deliveries, verified by the
 * `standardwebhooks` library, retried through a receiver's failures, and not lost when the
 * process dies between the alert write and the outbox write.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCode, gql } from '../support/fixtures.js';
import { signToken, startTestInstance, type TestInstance } from '../support/harness.js';
import { defineUsageFeatures, key, meteredAccount, recordUsage, recordUsageOk } from '../support/usage-fixtures.js';
import { Receiver } from './receiver.js';

const CREATE = `mutation ($input: WebhookEndpointInput!) {
  createWebhookEndpoint(input: $input) { secret endpoint { id url events accountId } }
}`;
const DELIVERIES = `query ($id: ID!, $first: Int) {
  webhookDeliveries(endpointId: $id, first: $first) { id webhookId eventType status attempts responseStatus lastAttemptAt }
}`;
const THRESHOLDS = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100];

let instance: TestInstance;
let survivor: TestInstance;
beforeAll(async () => {
  const env = { WEBHOOKS_ALLOW_PRIVATE: 'true', WEBHOOKS_RETRY_BASE_SECONDS: '0.05', USAGE_LEASE_SECONDS: '1' };
  instance = await startTestInstance({ env });
  survivor = await startTestInstance({ dbName: instance.dbName, env });
  await defineUsageFeatures(instance);
});
afterAll(async () => {
  await survivor.stop();
  await instance.stop();
});

/** An endpoint for the account's alerts (or grants), trusted by the receiver with its secret. */
async function endpointFor(receiver: Receiver, base: string, accountId: string, events = ['usage.threshold_crossed']) {
  const url = `${base}/hooks/${accountId}`;
  const { createWebhookEndpoint } = await gql<any>(instance, CREATE, { input: { url, events, accountId } });
  expect(createWebhookEndpoint.secret).toMatch(/^whsec_/);
  receiver.trust(url, createWebhookEndpoint.secret);
  return createWebhookEndpoint.endpoint.id as string;
}

describe('threshold crossings as webhooks', () => {
  it('delivers 100 crossings exactly once each after dedup by webhook-id, through two failed answers', async () => {
    const receiver = new Receiver(2);
    const accounts = await Promise.all(
      Array.from({ length: 10 }, () => meteredAccount(instance, { included: '100', thresholds: THRESHOLDS })),
    );
    // Account-scoped endpoints: other tests' alerts in this database do not reach them.
    const base = await receiver.start();
    const endpointIds: string[] = [];
    for (const { accountId } of accounts) endpointIds.push(await endpointFor(receiver, base, accountId));

    // Ten steps of 10 units on ten accounts, from two instances: 100 crossings.
    await Promise.all(
      accounts.map(async ({ accountId }, a) => {
        for (let step = 0; step < 10; step++) {
          const via = (a + step) % 2 === 0 ? instance : survivor;
          await recordUsageOk(via, { accountId, feature: 'api_calls', quantity: '10', idempotencyKey: key() });
        }
      }),
    );
    await receiver.waitFor(100);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(receiver.unverified).toEqual([]);
    const distinct = receiver.distinct();
    expect(distinct.size).toBe(100);
    const alerts = [...distinct.values()].map((delivery) => `${delivery.data.accountId}:${delivery.data.threshold}`);
    expect(new Set(alerts).size).toBe(100);
    expect([...distinct.values()].every((delivery) => delivery.type === 'usage.threshold_crossed')).toBe(true);
    // Two answers failed, so at least 102 requests; claims never sent one attempt twice.
    expect(receiver.requests).toBeGreaterThanOrEqual(102);
    expect(receiver.received.length).toBe(100);

    const listed = await Promise.all(endpointIds.map((id) => gql<any>(instance, DELIVERIES, { id, first: 50 })));
    const deliveries = listed.flatMap((answer) => answer.webhookDeliveries);
    expect(deliveries).toHaveLength(100);
    expect(deliveries.every((delivery: any) => delivery.status === 'SUCCEEDED' && delivery.responseStatus === 204)).toBe(true);
    expect(deliveries.reduce((sum: number, delivery: any) => sum + delivery.attempts, 0)).toBe(102);
    await receiver.stop();
  });

  it('loses nothing when the process dies between the alert write and the outbox write', async () => {
    const receiver = new Receiver();
    const { accountId } = await meteredAccount(instance, { included: '100', thresholds: [50] });
    await endpointFor(receiver, await receiver.start(), accountId);
    instance.services.webhooks.faults.arm({ accountId });
    const input = { accountId, feature: 'api_calls', quantity: '60', idempotencyKey: key() };
    const crashed = await recordUsage(instance, input);
    expect(errorCode(crashed as never)).toBe('INTERNAL_SERVER_ERROR');
    // The alert is stored; its outbox row is not.
    expect(await instance.database.db.collection('usage_alerts').countDocuments({ accountId })).toBe(1);
    expect(await instance.database.db.collection('webhook_events').countDocuments({ accountId })).toBe(0);
    // Recovery (the usage sweeper, lease 1 s) replays the exactly-once point: the outbox row follows.
    await receiver.waitFor(1, 15_000);
    expect(await recordUsageOk(survivor, input)).toMatchObject({ status: 'DUPLICATE', originalStatus: 'ACCEPTED' });
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(receiver.received).toHaveLength(1);
    expect(receiver.received[0]!.data).toMatchObject({ accountId, threshold: 50, used: '60' });
    await receiver.stop();
  });
});

describe('grant events', () => {
  it('sends grant.issued and grant.voided; a retry of issueGrant writes an outbox row the first attempt missed', async () => {
    const receiver = new Receiver();
    const { accountId } = await meteredAccount(instance, { included: '100' });
    await endpointFor(receiver, await receiver.start(), accountId, ['grant.issued', 'grant.voided']);
    const issue = `mutation ($input: IssueGrantInput!) { issueGrant(input: $input) { id } }`;
    const input = { accountId, feature: 'api_calls', amount: '5', reason: 'webhook test', idempotencyKey: key() };
    instance.services.webhooks.faults.arm({ accountId });
    const { issueGrant } = await gql<any>(instance, issue, { input });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(receiver.received).toHaveLength(0);
    await gql(survivor, issue, { input });
    await gql(instance, `mutation ($id: ID!) { voidGrant(id: $id, reason: "mistake") { id } }`, { id: issueGrant.id });
    await receiver.waitFor(2);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(receiver.received.map((received) => [received.type, received.data.grantId]).sort()).toEqual([
      ['grant.issued', issueGrant.id],
      ['grant.voided', issueGrant.id],
    ]);
    await receiver.stop();
  });
});

describe('endpoints', () => {
  it('refuses loopback targets unless WEBHOOKS_ALLOW_PRIVATE=true, and customer tokens', async () => {
    const strict = await startTestInstance({ dbName: instance.dbName });
    try {
      for (const url of [
        'http://127.0.0.1:9/x',
        'http://localhost:9/x',
        'http://[::1]:9/x',
        'http://10.1.2.3/x',
        'http://169.254.169.254/',
      ]) {
        const answer = await strict.graphql(CREATE, { input: { url, events: ['grant.issued'] } });
        expect(errorCode(answer as never), url).toBe('BAD_USER_INPUT');
        expect(answer.errors![0]!.extensions!.field).toBe('url');
      }
      const customer = await signToken({ scope: 'webhooks:write', account_id: 'acct_x' });
      const refused = await strict.graphql(
        CREATE,
        { input: { url: 'https://example.com/x', events: ['grant.issued'] } },
        { token: customer },
      );
      expect(errorCode(refused as never)).toBe('FORBIDDEN');
    } finally {
      await strict.stop();
    }
  });

  it('sends grant.issued, and redeliverWebhook sends the same webhook-id again', async () => {
    const receiver = new Receiver();
    const { accountId } = await meteredAccount(instance, { included: '100' });
    const endpointId = await endpointFor(receiver, await receiver.start(), accountId, ['grant.issued', 'grant.voided']);
    await gql(instance, `mutation ($input: IssueGrantInput!) { issueGrant(input: $input) { id } }`, {
      input: { accountId, feature: 'api_calls', amount: '5', reason: 'webhook test', idempotencyKey: key() },
    });
    await receiver.waitFor(1);
    const [delivery] = (await gql<any>(instance, DELIVERIES, { id: endpointId })).webhookDeliveries;
    expect(delivery).toMatchObject({ eventType: 'grant.issued', status: 'SUCCEEDED', attempts: 1 });
    await gql(instance, 'mutation ($id: ID!) { redeliverWebhook(deliveryId: $id) { id status } }', { id: delivery.id });
    const deadline = Date.now() + 5_000;
    while (receiver.received.length < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(receiver.received.map((received) => received.id)).toEqual([delivery.webhookId, delivery.webhookId]);
    const audit = await instance.database.db
      .collection('audit_log')
      .countDocuments({ action: 'webhook.redelivered', targetId: delivery.id });
    expect(audit).toBe(1);
    await receiver.stop();
  });
});
