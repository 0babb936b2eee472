import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signToken, startTestInstance, type TestInstance } from '../support/harness.js';

let allotment: TestInstance;
const PAGE = `query ($accountId: ID, $first: Int, $after: String) {
  auditLog(accountId: $accountId, first: $first, after: $after) {
    edges { cursor node { id at actor action targetType targetId accountId before after requestId } }
    pageInfo { hasNextPage endCursor }
  } }`;

beforeAll(async () => {
  allotment = await startTestInstance();
  // Entries straight through the module's writer; the mutation tests assert the writes.
  for (let i = 0; i < 7; i++) {
    await allotment.services.audit.record({
      actor: 'ops@example.com',
      action: 'grant.issued',
      targetType: 'Grant',
      targetId: `grant_${i}`,
      accountId: i < 5 ? 'acct_a' : 'acct_b',
      before: null,
      after: { amount: 10n * BigInt(i) + 1n },
      requestId: `req_${i}`,
    });
  }
});
afterAll(() => allotment.stop());

describe('auditLog', () => {
  it('pages newest first with a cursor until the end, without gaps or repeats', async () => {
    const seen: string[] = [];
    let after: string | null = null;
    let pages = 0;
    do {
      const response: any = await allotment.graphql(PAGE, { accountId: 'acct_a', first: 2, after });
      expect(response.errors).toBeUndefined();
      const connection = response.data.auditLog;
      seen.push(...connection.edges.map((edge: any) => edge.node.targetId));
      after = connection.pageInfo.hasNextPage ? connection.pageInfo.endCursor : null;
      pages++;
    } while (after && pages < 10);
    expect(seen).toEqual(['grant_4', 'grant_3', 'grant_2', 'grant_1', 'grant_0']);
    expect(pages).toBe(3);
  });

  it('stores snapshots readably: quantities as decimal strings', async () => {
    const response = await allotment.graphql(PAGE, { accountId: 'acct_b', first: 1 });
    const node = response.data?.auditLog.edges[0].node;
    expect(node).toMatchObject({
      action: 'grant.issued',
      actor: 'ops@example.com',
      targetId: 'grant_6',
      after: { amount: '0.000061' },
      requestId: 'req_6',
    });
  });

  it('refuses a cursor it did not issue', async () => {
    const response = await allotment.graphql(PAGE, { first: 2, after: 'bm90LWEtY3Vyc29y' });
    expect(response.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });

  it('bounds the page size', async () => {
    const response = await allotment.graphql(PAGE, { first: 10_000 });
    expect(response.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });

  it('needs audit:read, and pins customer tokens to their own account', async () => {
    const noScope = await allotment.graphql(PAGE, { accountId: 'acct_a' }, { token: await signToken({ scope: 'entitlements:read' }) });
    expect(noScope.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');

    const customer = await signToken({ sub: 'user_b', scope: 'audit:read', account_id: 'acct_b' });
    const other = await allotment.graphql(PAGE, { accountId: 'acct_a' }, { token: customer });
    expect(other.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');

    const implicit = await allotment.graphql(PAGE, {}, { token: customer });
    const accounts = new Set(implicit.data?.auditLog.edges.map((edge: any) => edge.node.accountId));
    expect([...accounts]).toEqual(['acct_b']);
  });
});
