/**
 * Pools (R13) in the operations around usage: reconciliation repairs a member's share,
 * a finalised invoice freezes the per-member quantities, and a grant on the owner pushes
 * the members' live balances.
 */
import type { Client } from 'graphql-ws';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { memberKey } from '../../src/shared/counter-key.js';
import { collect, liveClient, waitFor } from '../alerts/live-client.js';
import { gql } from '../support/fixtures.js';
import { signToken, startTestInstance, type TestInstance } from '../support/harness.js';
import { defineUsageFeatures, key, recordUsageOk } from '../support/usage-fixtures.js';
import { pool } from './fixtures.js';

let allotment: TestInstance;
const clients: Client[] = [];
beforeAll(async () => {
  allotment = await startTestInstance({ env: { RETENTION_DAYS: '3650' } });
  await defineUsageFeatures(allotment);
});
afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.dispose()));
});
afterAll(() => allotment?.stop());

const use = (accountId: string, quantity: string, timestamp?: string) =>
  recordUsageOk(allotment, { accountId, feature: 'api_calls', quantity, idempotencyKey: key(), ...(timestamp ? { timestamp } : {}) });

const counters = () => allotment.database.db.collection<any>('usage_counters');

describe('pool maintenance', () => {
  it('reconcileUsage on the owner’s counter repairs a drifted member share', async () => {
    const { ownerId, members } = await pool(allotment, { included: '1000', members: 2 });
    const [a, b] = members as [string, string];
    await use(a, '7');
    await use(b, '3');
    await use(ownerId, '1');
    const counter = await counters().findOne({ accountId: ownerId });
    await counters().updateOne({ _id: counter._id }, { $set: { [`members.${memberKey(a)}`]: 99_000_000n } });
    const report = await gql(
      allotment,
      `mutation ($a: ID!, $p: DateTime!) { reconcileUsage(accountId: $a, feature: "api_calls", periodStart: $p) { observed expected drift repaired } }`,
      { a: ownerId, p: counter.periodStart.toISOString() },
    );
    expect(report.reconcileUsage).toEqual({ observed: '11', expected: '11', drift: '0', repaired: true });
    const repaired = await counters().findOne({ _id: counter._id });
    expect(repaired.members).toEqual({ [memberKey(a)]: 7_000_000n, [memberKey(b)]: 3_000_000n });
  });

  it('freezes the per-member quantities in a finalised invoice', async () => {
    const { ownerId, contractId, members } = await pool(allotment, { included: '100', members: 1, enforcement: 'SOFT' });
    await use(members[0]!, '60', '2026-11-10T00:00:00Z');
    await use(ownerId, '50', '2026-11-11T00:00:00Z');
    const finalized = await gql(
      allotment,
      `mutation ($c: ID!) { finalizeInvoice(contractId: $c, periodStart: "2026-11-01T00:00:00Z") {
         final lines { kind feature members { accountId quantity } } usage { feature used members { accountId quantity } } } }`,
      { c: contractId },
    );
    const expected = [
      { accountId: ownerId, quantity: '50' },
      { accountId: members[0], quantity: '60' },
    ];
    expect(finalized.finalizeInvoice.final).toBe(true);
    expect(finalized.finalizeInvoice.usage).toEqual([{ feature: 'api_calls', used: '110', members: expected }]);
    expect(finalized.finalizeInvoice.lines.filter((line: any) => line.feature === 'api_calls')).toEqual([
      { kind: 'OVERAGE', feature: 'api_calls', members: expected },
    ]);
    // Read back from the frozen snapshot.
    const again = await gql(
      allotment,
      `query ($c: ID!) { _entities(representations: [{ __typename: "Contract", id: $c }]) { ... on Contract {
         invoicePreview(periodStart: "2026-11-01T00:00:00Z") { final usage { members { accountId quantity } } } } } }`,
      { c: contractId },
    );
    expect(again._entities[0].invoicePreview).toEqual({ final: true, usage: [{ members: expected }] });
  });

  it('pushes entitlementUpdated to a member when the owner gets a grant', async () => {
    const { ownerId, members } = await pool(allotment, { included: '100', members: 1 });
    const client = liveClient(allotment.wsUrl, await signToken({ scope: 'entitlements:read' }));
    clients.push(client);
    const updates = collect<any>(
      client,
      `subscription ($accountId: ID!) { entitlementUpdated(accountId: $accountId) { accountId entitlement { capacity pooledFrom } } }`,
      { accountId: members[0] },
      'entitlementUpdated',
    );
    await waitFor(() => allotment.services.live.hub.listenerCounts().balances >= 1);
    await gql(allotment, `mutation ($input: IssueGrantInput!) { issueGrant(input: $input) { id } }`, {
      input: { accountId: ownerId, feature: 'api_calls', amount: '25', reason: 'pool top-up', idempotencyKey: key() },
    });
    await waitFor(() => updates.events.some((update) => update.entitlement.capacity === '125'), 10_000, 'the member’s new capacity');
    expect(updates.events.at(-1)).toEqual({ accountId: members[0], entitlement: { capacity: '125', pooledFrom: ownerId } });
  });
});
