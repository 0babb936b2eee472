import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCode, gql } from '../support/fixtures.js';
import { signToken, startTestInstance, type TestInstance } from '../support/harness.js';
import { defineUsageFeatures, key, meteredAccount, recordUsageOk } from '../support/usage-fixtures.js';
import {
  DAY,
  entitlementOf,
  floorHour,
  grantById,
  grantsOf,
  HOUR,
  iso,
  issueGrant,
  issueGrantOk,
  VOID_GRANT,
  voidGrantOk,
} from './fixtures.js';

let allotment: TestInstance;
beforeAll(async () => {
  allotment = await startTestInstance();
  await defineUsageFeatures(allotment);
});
afterAll(() => allotment.stop());

const auditOf = (accountId: string, action: RegExp) =>
  allotment.database.db.collection<any>('audit_log').find({ accountId, action }).sort({ _id: 1 }).toArray();

describe('issueGrant', () => {
  it('lets an internal tool grant 10,000 temporary credits with one call, counted at once', async () => {
    const { accountId } = await meteredAccount(allotment, { included: '1000', enforcement: 'HARD' });
    const expiresAt = iso(Date.now() + 7 * DAY);
    const tool = await signToken({ sub: 'support-console', scope: 'grants:write' });
    const response = await issueGrant(
      allotment,
      { accountId, amount: '10000', expiresAt, reason: 'Launch week: temporary credits' },
      { token: tool },
    );
    expect(response.errors).toBeUndefined();
    const grant = response.data!.issueGrant;
    expect(grant).toMatchObject({
      accountId,
      feature: 'api_calls',
      kind: 'PROMOTIONAL',
      amount: '10000',
      burned: '0',
      remaining: '10000',
      priority: 10,
      status: 'ACTIVE',
      issuedBy: 'support-console',
      reason: 'Launch week: temporary credits',
      expiresAt,
      voidedAt: null,
    });
    // Effective at issuance; the expiry is rounded in to the whole hour before it.
    expect(Date.parse(grant.activeFrom)).toBeLessThanOrEqual(Date.now());
    expect(grant.activeUntil).toBe(iso(floorHour(Date.parse(expiresAt))));
    expect(await entitlementOf(allotment, accountId)).toMatchObject({
      included: '1000',
      granted: '10000',
      capacity: '11000',
      remaining: '11000',
    });
    expect(await recordUsageOk(allotment, { accountId, feature: 'api_calls', quantity: '5000', idempotencyKey: key() })).toMatchObject({
      status: 'ACCEPTED',
      reason: 'WITHIN_GRANTS',
    });
  });

  it('re-arms a threshold that fired once the grant lowers the ratio below it (R9)', async () => {
    const { accountId } = await meteredAccount(allotment, { included: '100', enforcement: 'SOFT', thresholds: [80] });
    const alertsOf = async () =>
      (
        await gql(
          allotment,
          `query ($id: ID!) { _entities(representations: [{ __typename: "Account", id: $id }]) { ... on Account { alerts(feature: "api_calls") { threshold used capacity } } } }`,
          {
            id: accountId,
          },
        )
      )._entities[0].alerts.map((alert: any) => [alert.threshold, alert.used, alert.capacity]);
    await recordUsageOk(allotment, { accountId, feature: 'api_calls', quantity: '85', idempotencyKey: key() });
    expect(await alertsOf()).toEqual([[80, '85', '100']]);
    await issueGrantOk(allotment, { accountId, amount: '100' });
    await recordUsageOk(allotment, { accountId, feature: 'api_calls', quantity: '80', idempotencyKey: key() });
    expect((await alertsOf()).sort()).toEqual([
      [80, '165', '200'],
      [80, '85', '100'],
    ]);
  });

  it('returns the original grant for the same key and payload, and refuses another payload (IDEMPOTENCY_KEY_REUSED)', async () => {
    const { accountId } = await meteredAccount(allotment);
    const input = { accountId, amount: '250', idempotencyKey: 'crm-case-77', reason: 'Goodwill', kind: 'PREPAID' as const, priority: 3 };
    const [first, ...racing] = await Promise.all(Array.from({ length: 5 }, () => issueGrant(allotment, input)));
    const original = first!.data!.issueGrant;
    for (const response of racing) expect(response.data?.issueGrant.id).toBe(original.id);
    expect(await issueGrantOk(allotment, input)).toMatchObject({ id: original.id, amount: '250', issuedAt: original.issuedAt });
    expect(await grantsOf(allotment, accountId)).toHaveLength(1);

    const changed = await issueGrant(allotment, { ...input, amount: '251' });
    expect(errorCode(changed)).toBe('IDEMPOTENCY_KEY_REUSED');
    expect(changed.errors?.[0]?.message).toMatch(/crm-case-77.*different payload/);
    // The key is per account: another account may use it.
    const other = await meteredAccount(allotment);
    expect((await issueGrantOk(allotment, { ...input, accountId: other.accountId })).id).not.toBe(original.id);

    const actions = (await auditOf(accountId, /^grant\./)).map((entry) => entry.action);
    expect(actions.filter((action) => action === 'grant.issued')).toHaveLength(1);
    expect(actions.filter((action) => action === 'grant.issue_repeated')).toHaveLength(5);
  });

  it('refuses bad input with messages that say how to fix it', async () => {
    const { accountId } = await meteredAccount(allotment);
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ reason: '   ' }, /reason is required/],
      [{ feature: 'no_such_feature' }, /Unknown feature "no_such_feature"/],
      [{ feature: 'sso' }, /only METERED features can be granted/],
      [{ amount: '0' }, /amount must be greater than zero/],
      [{ amount: '1.0000001' }, /more than 6 fractional digits/],
      [{ effectiveAt: '2026-03-02T10:00:00Z', expiresAt: '2026-03-02T09:00:00Z' }, /expiresAt .* must be after effectiveAt/],
      [{ effectiveAt: '2026-03-02T10:10:00Z', expiresAt: '2026-03-02T10:50:00Z' }, /would never count: at one-hour resolution/],
      [{ priority: -1 }, /priority must be an integer from 0/],
      [{ idempotencyKey: '' }, /idempotencyKey must be 1-256/],
    ];
    for (const [changes, message] of cases) {
      const response = await issueGrant(allotment, { accountId, amount: '10', ...changes });
      expect(errorCode(response), JSON.stringify(changes)).toBe('BAD_USER_INPUT');
      expect(response.errors?.[0]?.message).toMatch(message);
    }
    expect(await grantsOf(allotment, accountId)).toHaveLength(0);
  });

  it('refuses customer tokens, and tokens without grants:write', async () => {
    const { accountId } = await meteredAccount(allotment);
    const customer = await signToken({ sub: 'user_1', scope: 'entitlements:read grants:write', account_id: accountId });
    const denied = await issueGrant(allotment, { accountId, amount: '1000000' }, { token: customer });
    expect(errorCode(denied)).toBe('FORBIDDEN');
    expect(denied.errors?.[0]?.message).toMatch(/Customer tokens cannot use "grants:write"/);
    const reader = await signToken({ scope: 'entitlements:read audit:read' });
    expect(errorCode(await issueGrant(allotment, { accountId, amount: '1' }, { token: reader }))).toBe('FORBIDDEN');
    expect(errorCode(await issueGrant(allotment, { accountId, amount: '1' }, { token: null }))).toBe('UNAUTHENTICATED');

    const grant = await issueGrantOk(allotment, { accountId, amount: '5' });
    const voidAttempt = await allotment.graphql(VOID_GRANT, { id: grant.id, reason: 'mine now' }, { token: customer });
    expect(errorCode(voidAttempt)).toBe('FORBIDDEN');
    // The customer may read its own grants.
    const own = await allotment.graphql(
      `query ($id: ID!) { _entities(representations: [{ __typename: "Account", id: $id }]) { ... on Account { grants { id amount status } } } }`,
      { id: accountId },
      { token: customer },
    );
    expect(own.data?._entities[0].grants).toEqual([{ id: grant.id, amount: '5', status: 'ACTIVE' }]);
  });

  it('writes grant.issued with the grant as after, the actor and the request id', async () => {
    const { accountId } = await meteredAccount(allotment);
    const token = await signToken({ sub: 'finance-bot', scope: 'grants:write' });
    const response = await fetch(allotment.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, 'x-request-id': 'req-grant-1' },
      body: JSON.stringify({
        query: `mutation ($input: IssueGrantInput!) { issueGrant(input: $input) { id } }`,
        variables: {
          input: { accountId, feature: 'api_calls', amount: '12.5', reason: 'Prepaid pack', idempotencyKey: 'pack-1', kind: 'PREPAID' },
        },
      }),
    });
    const { data } = (await response.json()) as any;
    const [entry] = await auditOf(accountId, /^grant\.issued$/);
    expect(entry).toMatchObject({
      actor: 'finance-bot',
      targetType: 'Grant',
      targetId: data.issueGrant.id,
      requestId: 'req-grant-1',
      before: null,
    });
    expect(entry.after).toMatchObject({
      amount: '12.5',
      kind: 'PREPAID',
      reason: 'Prepaid pack',
      issuedBy: 'finance-bot',
      idempotencyKey: 'pack-1',
    });
  });
});

describe('voidGrant', () => {
  it('stops the grant at once, audits before and after, and treats a repeat with the same reason as a retry', async () => {
    const { accountId } = await meteredAccount(allotment, { included: '10' });
    const grant = await issueGrantOk(allotment, { accountId, amount: '40' });
    expect((await entitlementOf(allotment, accountId)).capacity).toBe('50');

    const voided = await voidGrantOk(allotment, grant.id, 'Issued to the wrong account');
    expect(voided).toMatchObject({
      id: grant.id,
      status: 'VOIDED',
      voidedBy: 'test-operator',
      voidReason: 'Issued to the wrong account',
      burned: '0',
      remaining: '0',
    });
    expect(Date.parse(voided.activeUntil)).toBe(Date.parse(voided.voidedAt));
    expect((await entitlementOf(allotment, accountId)).capacity).toBe('10');
    expect(await grantsOf(allotment, accountId, { activeOnly: true })).toEqual([]);

    const again = await voidGrantOk(allotment, grant.id, 'Issued to the wrong account');
    expect(again).toMatchObject({ status: 'VOIDED', voidedAt: voided.voidedAt });
    const otherReason = await allotment.graphql(VOID_GRANT, { id: grant.id, reason: 'changed my mind' });
    expect(errorCode(otherReason)).toBe('BAD_USER_INPUT');
    expect(otherReason.errors?.[0]?.message).toMatch(
      /already voided at .* by test-operator \("Issued to the wrong account"\); a void cannot be changed/,
    );

    const entries = await auditOf(accountId, /^grant\./);
    expect(entries.map((entry) => entry.action)).toEqual(['grant.issued', 'grant.voided', 'grant.void_repeated']);
    expect(entries[1]).toMatchObject({
      before: { voidedAt: null, voidReason: null },
      after: { voidReason: 'Issued to the wrong account', voidedBy: 'test-operator' },
    });
    expect(entries[1].after.voidCut).toMatchObject({ units: '0' });
  });

  it('names a missing grant (NOT_FOUND) and requires a reason', async () => {
    expect(errorCode(await allotment.graphql(VOID_GRANT, { id: 'grt_missing', reason: 'x' }))).toBe('NOT_FOUND');
    const { accountId } = await meteredAccount(allotment);
    const grant = await issueGrantOk(allotment, { accountId, amount: '1' });
    expect(errorCode(await allotment.graphql(VOID_GRANT, { id: grant.id, reason: '' }))).toBe('BAD_USER_INPUT');
  });
});

describe('Account.grants', () => {
  it('lists PENDING and ACTIVE grants by default, every grant with activeOnly: false, and filters by feature', async () => {
    const { accountId } = await meteredAccount(allotment);
    const now = Date.now();
    const active = await issueGrantOk(allotment, { accountId, amount: '1' });
    const pending = await issueGrantOk(allotment, { accountId, amount: '2', effectiveAt: iso(floorHour(now) + 5 * HOUR) });
    const expired = await issueGrantOk(allotment, {
      accountId,
      amount: '3',
      effectiveAt: iso(floorHour(now) - 5 * HOUR),
      expiresAt: iso(floorHour(now) - 2 * HOUR),
    });
    const voided = await issueGrantOk(allotment, { accountId, amount: '4' });
    await voidGrantOk(allotment, voided.id);
    const tokens = await issueGrantOk(allotment, { accountId, amount: '5', feature: 'tokens' });

    expect(pending).toMatchObject({ status: 'PENDING', remaining: '2', activeFrom: iso(floorHour(now) + 5 * HOUR) });
    expect(expired).toMatchObject({ status: 'EXPIRED', remaining: '0' });

    const defaults = await gql(
      allotment,
      `query ($id: ID!) { _entities(representations: [{ __typename: "Account", id: $id }]) { ... on Account { grants { id status } } } }`,
      {
        id: accountId,
      },
    );
    expect(defaults._entities[0].grants.map((grant: any) => grant.id).sort()).toEqual([active.id, pending.id, tokens.id].sort());
    const all = await grantsOf(allotment, accountId, { feature: 'api_calls', activeOnly: false });
    expect(Object.fromEntries(all.map((grant) => [grant.amount, grant.status]))).toEqual({
      '1': 'ACTIVE',
      '2': 'PENDING',
      '3': 'EXPIRED',
      '4': 'VOIDED',
    });
    expect(await grantById(allotment, accountId, voided.id)).toMatchObject({
      voidReason: 'issued to the wrong account',
      voidedBy: 'test-operator',
    });
  });
});
