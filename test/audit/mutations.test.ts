/**
 * R10: every mutation writes an immutable audit entry with the actor (token subject),
 * action, target, before/after, request id and time. Each mutation below is sent with its
 * own x-request-id, and its entries are found by it. The schema's Mutation type is
 * introspected, so a mutation added later without an audit assertion here fails the test.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCode } from '../support/fixtures.js';
import { signToken, startTestInstance, type TestInstance } from '../support/harness.js';
import { type AuditedMutation, integrationMutations } from './integration-mutations.js';
import { addOnMutations } from './add-on-mutations.js';

let allotment: TestInstance;
let operatorToken: string;
const run = randomUUID().slice(0, 8);
const accountId = `acct_audit_${run}`;
const contractId = `ctr_audit_${run}`;
const planKey = `audit_${run}`;
const feature = `audited_${run}`;

const PAGE = `query ($accountId: ID, $first: Int, $after: String) {
  auditLog(accountId: $accountId, first: $first, after: $after) {
    edges { cursor node { id at actor action targetType targetId accountId before after requestId } }
    pageInfo { hasNextPage endCursor } } }`;

beforeAll(async () => {
  allotment = await startTestInstance();
  operatorToken = await signToken({ sub: 'ops@example.com' });
});
afterAll(() => allotment.stop());

/** Sends one operation as ops@example.com with a request id of its own; returns data. */
async function send(requestId: string, query: string, variables: Record<string, unknown> = {}): Promise<any> {
  const response = await fetch(allotment.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${operatorToken}`, 'x-request-id': requestId },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data?: any; errors?: unknown[] };
  if (body.errors) throw new Error(`${requestId}: ${JSON.stringify(body.errors)}`);
  return body.data;
}

async function entriesOf(requestId: string): Promise<any[]> {
  return allotment.database.db.collection('audit_log').find({ requestId }).sort({ _id: 1 }).toArray();
}

const at = new Date(Math.floor(Date.now() / 3_600_000) * 3_600_000 - 2 * 86_400_000).toISOString();
const usage = (idempotencyKey: string, quantity: string) => ({ accountId, feature, quantity, idempotencyKey });

/** Each mutation, how to send it, and the entries it must leave. */
const MUTATIONS: AuditedMutation[] = [
  {
    field: 'defineFeature',
    requestId: 'req-define-feature',
    send: (id) =>
      send(id, `mutation ($input: FeatureInput!) { defineFeature(input: $input) { key } }`, {
        input: { key: feature, name: 'Audited calls', type: 'METERED' },
      }),
    expected: [
      { action: 'feature.defined', targetType: 'Feature', targetId: feature, before: null, after: { _id: feature, type: 'METERED' } },
    ],
  },
  {
    field: 'publishPlan',
    requestId: 'req-publish-plan',
    send: (id) =>
      send(id, `mutation ($input: PlanInput!) { publishPlan(input: $input) { version } }`, {
        input: { key: planKey, name: 'Audited', currency: 'USD', entitlements: [{ feature, included: '10', enforcement: 'HARD' }] },
      }),
    expected: [{ action: 'plan.published', targetType: 'PlanVersion', targetId: `${planKey}@1`, before: null }],
  },
  {
    field: 'upsertContract',
    requestId: 'req-upsert-contract',
    send: (id) =>
      send(id, `mutation ($input: ContractInput!) { upsertContract(input: $input) { id } }`, {
        input: { id: contractId, accountId, planKey, startsAt: at },
      }),
    expected: [
      {
        action: 'contract.upserted',
        targetType: 'Contract',
        targetId: contractId,
        accountId,
        before: null,
        after: { status: 'ACTIVE', planKey },
      },
    ],
  },
  {
    field: 'changeContractPlan',
    requestId: 'req-change-plan',
    send: async (id) => {
      await send(`${id}-v2`, `mutation ($input: PlanInput!) { publishPlan(input: $input) { version } }`, {
        input: { key: planKey, name: 'Audited v2', currency: 'USD', entitlements: [{ feature, included: '20', enforcement: 'HARD' }] },
      });
      return send(id, `mutation ($id: ID!, $plan: ID!) { changeContractPlan(contractId: $id, planKey: $plan, version: 2) { id } }`, {
        id: contractId,
        plan: planKey,
      });
    },
    expected: [{ action: 'contract.plan_changed', targetId: contractId, accountId, before: { planVersion: 1 }, after: { planVersion: 2 } }],
  },
  {
    field: 'setEntitlementOverride',
    requestId: 'req-set-override',
    send: (id) =>
      send(id, `mutation ($id: ID!, $input: EntitlementOverrideInput!) { setEntitlementOverride(contractId: $id, input: $input) { id } }`, {
        id: contractId,
        input: { feature, grace: '1' },
      }),
    expected: [
      {
        action: 'contract.override_set',
        targetId: contractId,
        accountId,
        before: { overrides: {} },
        after: { overrides: { [feature]: { grace: '1' } } },
      },
    ],
  },
  {
    field: 'clearEntitlementOverride',
    requestId: 'req-clear-override',
    send: (id) =>
      send(id, `mutation ($id: ID!, $feature: ID!) { clearEntitlementOverride(contractId: $id, feature: $feature) { id } }`, {
        id: contractId,
        feature,
      }),
    expected: [
      {
        action: 'contract.override_set',
        targetId: contractId,
        before: { overrides: { [feature]: { grace: '1' } } },
        after: { overrides: {} },
      },
    ],
  },
  {
    field: 'setContractStatus',
    requestId: 'req-set-status',
    send: (id) => send(id, `mutation ($id: ID!) { setContractStatus(contractId: $id, status: PAST_DUE) { id } }`, { id: contractId }),
    expected: [{ action: 'contract.status_set', targetId: contractId, before: { status: 'ACTIVE' }, after: { status: 'PAST_DUE' } }],
  },
  {
    field: 'recordUsage',
    requestId: 'req-record-usage',
    send: async (id) => {
      const record = `mutation ($input: UsageEventInput!) { recordUsage(input: $input) { status } }`;
      await send(id, record, { input: usage('evt-accepted', '15') });
      await send(id, record, { input: usage('evt-accepted', '15') });
      // 20 included, 15 used: 6 more is denied, and the denial is recorded too.
      return send(id, record, { input: usage('evt-denied', '6') });
    },
    expected: [
      {
        action: 'usage.accepted',
        targetType: 'UsageEvent',
        targetId: 'evt-accepted',
        before: { used: '0' },
        after: { used: '15', quantity: '15', reason: 'INCLUDED' },
      },
      {
        action: 'usage.duplicate',
        targetType: 'UsageEvent',
        targetId: 'evt-accepted',
        after: { status: 'DUPLICATE', originalStatus: 'ACCEPTED' },
      },
      { action: 'usage.rejected', targetType: 'UsageEvent', targetId: 'evt-denied', after: { quantity: '6', reason: 'QUOTA_EXCEEDED' } },
    ],
  },
  {
    field: 'recordUsageBatch',
    requestId: 'req-record-batch',
    send: (id) =>
      send(id, `mutation ($events: [UsageEventInput!]!) { recordUsageBatch(events: $events) { accepted } }`, {
        events: [usage('evt-batch-1', '1'), usage('evt-batch-2', '2')],
      }),
    expected: [
      {
        action: 'usage.accepted',
        targetType: 'UsagePosting',
        after: { events: 2, quantity: '3', idempotencyKeys: ['evt-batch-1', 'evt-batch-2'] },
      },
    ],
  },
  {
    field: 'reconcileUsage',
    requestId: 'req-reconcile',
    send: async (id) => {
      const reconcile = `mutation ($a: ID!, $f: ID!, $p: DateTime!) { reconcileUsage(accountId: $a, feature: $f, periodStart: $p) { repaired } }`;
      await send(`${id}-clean`, reconcile, { a: accountId, f: feature, p: at });
      await allotment.database.db.collection<any>('usage_counters').updateOne({ accountId, feature }, { $inc: { used: 1_000_000n } });
      return send(id, reconcile, { a: accountId, f: feature, p: at });
    },
    expected: [{ action: 'usage.reconciled', targetType: 'UsageCounter', before: { used: '19' }, after: { used: '18', drift: '1' } }],
  },
  {
    field: 'issueGrant',
    requestId: 'req-issue-grant',
    send: async (id) => {
      const input = { accountId, feature, amount: '100', reason: 'Outage credit', idempotencyKey: 'audit-grant' };
      const data = await send(id, `mutation ($input: IssueGrantInput!) { issueGrant(input: $input) { id } }`, { input });
      await send(`${id}-again`, `mutation ($input: IssueGrantInput!) { issueGrant(input: $input) { id } }`, { input });
      return data;
    },
    expected: [
      {
        action: 'grant.issued',
        targetType: 'Grant',
        before: null,
        after: { amount: '100', reason: 'Outage credit', issuedBy: 'ops@example.com' },
      },
    ],
  },
  {
    field: 'voidGrant',
    requestId: 'req-void-grant',
    send: async (id) => {
      const [issued] = await entriesOf('req-issue-grant');
      return send(id, `mutation ($id: ID!) { voidGrant(id: $id, reason: "Duplicate credit") { id } }`, { id: issued.targetId });
    },
    expected: [
      {
        action: 'grant.voided',
        targetType: 'Grant',
        before: { voidedAt: null },
        after: { voidReason: 'Duplicate credit', voidedBy: 'ops@example.com' },
      },
    ],
  },
  {
    // Last: its second contract on the account would change the capacity the usage entries above rely on.
    field: 'finalizeInvoice',
    requestId: 'req-finalize-invoice',
    send: async (id) => {
      const billed = { id: `${contractId}_billed`, accountId, planKey, planVersion: 1, startsAt: '2026-01-01T00:00:00Z' };
      await send(`${id}-contract`, `mutation ($input: ContractInput!) { upsertContract(input: $input) { id } }`, { input: billed });
      const finalize = `mutation ($id: ID!) { finalizeInvoice(contractId: $id, periodStart: "2026-01-01T00:00:00Z") { final } }`;
      const data = await send(id, finalize, { id: billed.id });
      await send(`${id}-again`, finalize, { id: billed.id });
      return data;
    },
    expected: [
      {
        action: 'invoice.finalized',
        targetType: 'Invoice',
        targetId: `${contractId}_billed|2026-01-01T00:00:00.000Z`,
        accountId,
        before: null,
        after: { contractId: `${contractId}_billed`, total: '0.00', amountDue: '0.00' },
      },
    ],
  },
  {
    field: 'setAccountParent',
    requestId: 'req-set-account-parent',
    send: (id) =>
      send(id, `mutation ($a: ID!, $p: ID) { setAccountParent(accountId: $a, parentId: $p) { id } }`, {
        a: `${accountId}_member`,
        p: accountId,
      }),
    expected: [
      {
        action: 'account.parent_set',
        targetType: 'Account',
        targetId: `${accountId}_member`,
        accountId: `${accountId}_member`,
        before: { parentId: null },
        after: { parentId: accountId },
      },
    ],
  },
  {
    field: 'setAccountLimit',
    requestId: 'req-set-account-limit',
    send: (id) =>
      send(id, `mutation ($a: ID!, $f: ID!) { setAccountLimit(accountId: $a, feature: $f, limit: "12.5") { id } }`, {
        a: `${accountId}_member`,
        f: feature,
      }),
    expected: [
      {
        action: 'account.limit_set',
        targetType: 'Account',
        targetId: `${accountId}_member`,
        before: { feature, limit: null },
        after: { feature, limit: '12.5' },
      },
    ],
  },
  // Auto top-ups of a credit feature (R14).
  {
    field: 'setAutoTopUp',
    requestId: 'req-set-auto-top-up',
    send: (id) =>
      send(id, `mutation ($input: AutoTopUpInput!) { setAutoTopUp(input: $input) { enabled } }`, {
        input: { accountId, feature, below: '1', amount: '5', price: '2.50' },
      }),
    expected: [
      {
        action: 'auto_top_up.set',
        targetType: 'AutoTopUp',
        targetId: `${accountId}/${feature}`,
        before: null,
        after: { accountId, feature, price: '2.5', enabled: true },
      },
    ],
  },
  // Webhooks and billing (R21, R22), after the invoice they sync is final.
  ...integrationMutations({ send, instance: () => allotment, accountId, billedContractId: `${contractId}_billed` }),
  // Add-ons (R17), last: an attached add-on changes capacity.
  ...addOnMutations({ send, accountId, contractId, feature, addOnKey: `boost_${run}` }),
];

describe('the audit trail (R10)', () => {
  it('has an entry for each mutation type, with actor, action, target, before/after, request id and time', async () => {
    const introspection = await send('req-introspect', `{ __type(name: "Mutation") { fields { name } } }`);
    const mutationFields = introspection.__type.fields.map((field: { name: string }) => field.name).sort();
    expect(MUTATIONS.map((mutation) => mutation.field).sort()).toEqual(mutationFields);

    for (const mutation of MUTATIONS) {
      const sentAt = Date.now();
      await mutation.send(mutation.requestId);
      // The entries of one usage request share its instant, so their order among themselves is not insertion order.
      const entries = await entriesOf(mutation.requestId);
      expect(entries.map((entry) => entry.action).sort(), mutation.field).toEqual(mutation.expected.map((entry) => entry.action).sort());
      for (const expected of mutation.expected) {
        const entry = entries.find((candidate) => candidate.action === expected.action);
        expect(entry, mutation.field).toMatchObject({ actor: 'ops@example.com', requestId: mutation.requestId, ...expected });
        expect(entry.at.getTime(), mutation.field).toBeGreaterThanOrEqual(sentAt - 1_000);
      }
    }
    // The retries and checks on the side are audited as well.
    expect((await entriesOf('req-reconcile-clean')).map((entry) => entry.action)).toEqual(['usage.reconcile_checked']);
    expect((await entriesOf('req-issue-grant-again')).map((entry) => entry.action)).toEqual(['grant.issue_repeated']);
    expect((await entriesOf('req-finalize-invoice-again')).map((entry) => entry.action)).toEqual(['invoice.finalize_repeated']);
  });

  it('pages the account trail newest first with a cursor, without gaps or repeats', async () => {
    const all = (await allotment.graphql(PAGE, { accountId, first: 200 })).data!.auditLog.edges.map((edge: any) => edge.node.id);
    expect(all.length).toBeGreaterThan(10);
    const seen: string[] = [];
    let after: string | null = null;
    let pages = 0;
    do {
      const response: any = await allotment.graphql(PAGE, { accountId, first: 3, after });
      expect(response.errors).toBeUndefined();
      seen.push(...response.data.auditLog.edges.map((edge: any) => edge.node.id));
      after = response.data.auditLog.pageInfo.hasNextPage ? response.data.auditLog.pageInfo.endCursor : null;
      pages++;
    } while (after && pages < 100);
    expect(seen).toEqual(all);
    expect(pages).toBe(Math.ceil(all.length / 3));
  });

  it('answers a dispute: why usage was accepted or denied, and which grant was in force', async () => {
    const page = (await allotment.graphql(PAGE, { accountId, first: 200 })).data!.auditLog.edges.map((edge: any) => edge.node);
    const denied = page.find((entry: any) => entry.action === 'usage.rejected');
    expect(denied).toMatchObject({
      actor: 'ops@example.com',
      requestId: 'req-record-usage',
      after: { idempotencyKey: 'evt-denied', quantity: '6', reason: 'QUOTA_EXCEEDED' },
    });
    const grant = page.find((entry: any) => entry.action === 'grant.voided');
    expect(grant.after).toMatchObject({ amount: '100', voidReason: 'Duplicate credit' });
    expect(grant.after.activeFrom).toBeDefined();
    expect(grant.after.activeUntil).toBe(grant.after.voidedAt);
  });

  it("keeps customers to their own account: no other account's trail, and no grants", async () => {
    const customer = await signToken({
      sub: 'user_x',
      scope: 'audit:read entitlements:read grants:write',
      account_id: 'acct_someone_else',
    });
    expect(errorCode(await allotment.graphql(PAGE, { accountId }, { token: customer }))).toBe('FORBIDDEN');
    const own = await allotment.graphql(PAGE, {}, { token: customer });
    expect(own.errors).toBeUndefined();
    expect(own.data!.auditLog.edges.every((edge: any) => edge.node.accountId === 'acct_someone_else')).toBe(true);
    const grant = await allotment.graphql(
      `mutation ($input: IssueGrantInput!) { issueGrant(input: $input) { id } }`,
      { input: { accountId: 'acct_someone_else', feature, amount: '1000', reason: 'free stuff', idempotencyKey: 'k' } },
      { token: customer },
    );
    expect(errorCode(grant)).toBe('FORBIDDEN');
  });
});
