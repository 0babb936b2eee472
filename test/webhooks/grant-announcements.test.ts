/**
 * R21 for grants: a grant records the GrantChanged announcement it owes in the same write
 * as the fact, the request clears it once published, and the grant announcer publishes
 * what a failed reaction (or a process that died) left owed: exactly one webhook each.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gql } from '../support/fixtures.js';
import { startTestInstance, type TestInstance } from '../support/harness.js';
import { defineUsageFeatures, key, meteredAccount } from '../support/usage-fixtures.js';
import { Receiver } from './receiver.js';

const CREATE = `mutation ($input: WebhookEndpointInput!) {
  createWebhookEndpoint(input: $input) { secret endpoint { id } }
}`;
const ISSUE = `mutation ($input: IssueGrantInput!) { issueGrant(input: $input) { id status } }`;
const VOID = `mutation ($id: ID!, $reason: String!) { voidGrant(id: $id, reason: $reason) { id status } }`;
/** Well past any grace: a pass as of then announces everything still owed. */
const LATER = 10 * 60_000;

let instance: TestInstance;
let receiver: Receiver;
let base: string;
beforeAll(async () => {
  instance = await startTestInstance({ env: { WEBHOOKS_ALLOW_PRIVATE: 'true', USAGE_LEASE_SECONDS: '1' } });
  await defineUsageFeatures(instance);
  receiver = new Receiver();
  base = await receiver.start();
});
afterAll(async () => {
  await receiver.stop();
  await instance.stop();
});

async function accountWithEndpoint(): Promise<string> {
  const { accountId } = await meteredAccount(instance, { included: '100' });
  const url = `${base}/hooks/${accountId}`;
  const { createWebhookEndpoint } = await gql<any>(instance, CREATE, {
    input: { url, events: ['grant.issued', 'grant.voided'], accountId },
  });
  receiver.trust(url, createWebhookEndpoint.secret);
  return accountId;
}

const grantDoc = (id: string) => instance.database.db.collection<any>('grants').findOne({ _id: id });
const outbox = (accountId: string, type: string) => instance.database.db.collection('webhook_events').find({ accountId, type }).toArray();
const deliveriesOf = (eventIds: string[]) =>
  instance.database.db.collection('webhook_deliveries').countDocuments({ eventId: { $in: eventIds } });
const receivedFor = (grantId: string, type: string) =>
  receiver.received.filter((delivery) => delivery.data.grantId === grantId && delivery.type === type);

async function waitUntil(condition: () => Promise<boolean> | boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('grant announcements', () => {
  it('clears the flag at once on the normal path, for an issue and a void', async () => {
    const accountId = await accountWithEndpoint();
    const input = { accountId, feature: 'api_calls', amount: '5', reason: 'normal path', idempotencyKey: key() };
    const { issueGrant } = await gql<any>(instance, ISSUE, { input });
    const issued = await grantDoc(issueGrant.id);
    expect(issued).not.toHaveProperty('announce');
    expect(issued).not.toHaveProperty('announceSince');
    await gql(instance, VOID, { id: issueGrant.id, reason: 'normal void' });
    const voided = await grantDoc(issueGrant.id);
    expect(voided.voidedAt).toBeInstanceOf(Date);
    expect(voided).not.toHaveProperty('announce');
    expect(voided).not.toHaveProperty('announceSince');
    // Nothing owed: a pass finds nothing of this grant to announce again.
    await instance.services.grantAnnouncer.pass(new Date(Date.now() + LATER));
    await waitUntil(() => receivedFor(issueGrant.id, 'grant.voided').length === 1, 10_000);
    expect(await outbox(accountId, 'grant.issued')).toHaveLength(1);
    expect(await outbox(accountId, 'grant.voided')).toHaveLength(1);
  });

  it('a failed outbox write after the grant write leaves the flag; the announcer then writes exactly one grant.issued', async () => {
    const accountId = await accountWithEndpoint();
    instance.services.webhooks.faults.arm({ accountId });
    const input = { accountId, feature: 'api_calls', amount: '7', reason: 'announce later', idempotencyKey: key() };
    const { issueGrant } = await gql<any>(instance, ISSUE, { input });
    expect(issueGrant.status).toBe('ACTIVE');
    // The grant is stored, owing its announcement; the outbox row is missing.
    const owed = await grantDoc(issueGrant.id);
    expect(owed.announce).toEqual(['issued']);
    expect(owed.announceSince).toBeInstanceOf(Date);
    expect(await outbox(accountId, 'grant.issued')).toHaveLength(0);
    // Within the grace (5 s) no pass touches it.
    expect(await instance.services.grantAnnouncer.pass()).toBe(0);
    expect(await outbox(accountId, 'grant.issued')).toHaveLength(0);

    // The background announcer (every second) publishes it once the grace is over.
    await receiver.waitFor(receiver.received.length + 1, 15_000);
    await waitUntil(async () => !(await grantDoc(issueGrant.id)).announce, 5_000);
    // A late extra pass (or a racing instance) writes nothing new: ids derive from the grant.
    await instance.services.grantAnnouncer.pass(new Date(Date.now() + LATER));
    await new Promise((resolve) => setTimeout(resolve, 500));
    const rows = await outbox(accountId, 'grant.issued');
    expect(rows).toHaveLength(1);
    expect(await deliveriesOf(rows.map((row) => String(row._id)))).toBe(1);
    expect(receivedFor(issueGrant.id, 'grant.issued')).toHaveLength(1);
    expect(await grantDoc(issueGrant.id)).not.toHaveProperty('announceSince');
  });

  it('a void whose announcement failed is announced once by a pass after the void grace', async () => {
    const accountId = await accountWithEndpoint();
    const input = { accountId, feature: 'api_calls', amount: '3', reason: 'to be voided', idempotencyKey: key() };
    const { issueGrant } = await gql<any>(instance, ISSUE, { input });
    instance.services.webhooks.faults.arm({ accountId });
    const { voidGrant } = await gql<any>(instance, VOID, { id: issueGrant.id, reason: 'owed void' });
    expect(voidGrant.status).toBe('VOIDED');
    const owed = await grantDoc(issueGrant.id);
    expect(owed.announce).toEqual(['voided']);
    expect(owed.voidCut).not.toBeNull();
    expect(await outbox(accountId, 'grant.voided')).toHaveLength(0);

    expect(await instance.services.grantAnnouncer.pass(new Date(Date.now() + LATER))).toBeGreaterThanOrEqual(1);
    expect(await grantDoc(issueGrant.id)).not.toHaveProperty('announce');
    await waitUntil(() => receivedFor(issueGrant.id, 'grant.voided').length === 1, 10_000);
    await instance.services.grantAnnouncer.pass(new Date(Date.now() + LATER));
    await new Promise((resolve) => setTimeout(resolve, 500));
    const rows = await outbox(accountId, 'grant.voided');
    expect(rows).toHaveLength(1);
    expect(await deliveriesOf(rows.map((row) => String(row._id)))).toBe(1);
    expect(receivedFor(issueGrant.id, 'grant.voided')).toHaveLength(1);
    expect(await outbox(accountId, 'grant.issued')).toHaveLength(1);
  });

  it('does not re-announce grants stored before the flag existed', async () => {
    const accountId = await accountWithEndpoint();
    const input = { accountId, feature: 'api_calls', amount: '2', reason: 'legacy', idempotencyKey: key() };
    const { issueGrant } = await gql<any>(instance, ISSUE, { input });
    const { _id, ...stored } = await grantDoc(issueGrant.id);
    // As written before this change: no announcement fields; its webhook was never sent.
    const legacyId = `${_id}_legacy`;
    await instance.database.db.collection<any>('grants').insertOne({ ...stored, _id: legacyId });
    await instance.services.grantAnnouncer.pass(new Date(Date.now() + LATER));
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(receivedFor(legacyId, 'grant.issued')).toHaveLength(0);
    expect(await instance.database.db.collection('webhook_events').countDocuments({ 'data.grantId': legacyId })).toBe(0);
  });
});
