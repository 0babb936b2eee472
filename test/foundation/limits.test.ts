import { getIntrospectionQuery } from 'graphql';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { requestCommands, signToken, startTestInstance, type GraphQLResponse, type TestInstance } from '../support/harness.js';
import { insertContracts } from '../support/seed.js';
import { defineUsageFeatures, meteredAccount } from '../support/usage-fixtures.js';

/**
 * Request limits (docs/limits.md): refused before any resolver runs, with HTTP 400 (413 for
 * the body) and extensions.code QUERY_TOO_COMPLEX naming the limit.
 */
let allotment: TestInstance;
let customer: string;

beforeAll(async () => {
  allotment = await startTestInstance();
  await insertContracts(allotment.database.db, [
    { _id: 'ctr_lim_1', accountId: 'acct_lim' },
    { _id: 'ctr_lim_2', accountId: 'acct_lim' },
  ]);
  customer = await signToken({ sub: 'user_lim', scope: 'entitlements:read', account_id: 'acct_lim' });
});
afterAll(() => allotment.stop());

/** `Account.contracts.account.contracts…` nested `levels` times under an Account entity. */
function nestedContracts(levels: number): string {
  let selection = 'id';
  for (let i = 0; i < levels; i++) selection = `contracts { id account { ${selection} } }`;
  return `query ($reps: [_Any!]!) { _entities(representations: $reps) { ... on Account { ${selection} } } }`;
}
const ACCOUNT_REPS = { reps: [{ __typename: 'Account', id: 'acct_lim' }] };

function expectRefused(response: GraphQLResponse, limit: string, status = 400) {
  expect(response.status, JSON.stringify(response.errors)).toBe(status);
  expect(response.data ?? undefined).toBeUndefined();
  expect(response.errors?.[0]?.extensions?.code).toBe('QUERY_TOO_COMPLEX');
  expect(response.errors?.[0]?.extensions?.limit).toBe(limit);
}

/** Sends and asserts that no database command ran for the request: refused before resolvers. */
async function refusedBeforeResolvers(send: () => Promise<GraphQLResponse>, limit: string, status = 400) {
  const before = allotment.commands.length;
  const response = await send();
  expectRefused(response, limit, status);
  expect(requestCommands(allotment, before).filter((event) => event.commandName === 'find' || event.commandName === 'aggregate')).toEqual(
    [],
  );
  return response;
}

describe('depth, aliases, cost, directives and tokens are limited before execution', () => {
  it('refuses Account.contracts.account.contracts… nested 19 deep (it ran out of heap before)', async () => {
    const response = await refusedBeforeResolvers(
      () => allotment.graphql(nestedContracts(19), ACCOUNT_REPS, { token: customer }),
      'maxDepth',
    );
    expect(response.errors?.[0]?.message).toMatch(/depth limit of 10/);
  });

  it('still answers the same shape at a legitimate depth', async () => {
    const response = await allotment.graphql(nestedContracts(2), ACCOUNT_REPS, { token: customer });
    expect(response.errors).toBeUndefined();
    expect(response.data?._entities[0].contracts).toHaveLength(2);
  });

  it('refuses more aliases than allowed', async () => {
    const aliases = Array.from({ length: 31 }, (_, i) => `a${i}: checkEntitlement(accountId: "acct_lim", feature: "f") { allowed }`).join(
      ' ',
    );
    await refusedBeforeResolvers(() => allotment.graphql(`{ ${aliases} }`), 'maxAliases');
  });

  it('refuses 1,000 aliases of checkEntitlements (22 s of blocked event loop before) before parsing them', async () => {
    const aliases = Array.from({ length: 1000 }, (_, i) => `a${i}: checkEntitlements(checks: $checks) { allowed }`).join(' ');
    const checks = Array.from({ length: 1000 }, () => ({ accountId: 'acct_lim', feature: 'f' }));
    const response = await refusedBeforeResolvers(
      () => allotment.graphql(`query ($checks: [EntitlementCheckInput!]!) { ${aliases} }`, { checks }),
      'maxTokens',
    );
    expect(response.errors?.[0]?.message).toMatch(/more than 10000 tokens/);
  });

  it('refuses a query whose static cost is over the limit', async () => {
    const wide =
      'id status startsAt endsAt billingAnchor plan { key version name currency } planHistory { effectiveAt plan { key version } }';
    const selection = `... on Account { contracts { ${wide} account { contracts { ${wide} account { contracts { ${wide} } } } } } }`;
    // Each alias costs ~490 (within every other limit); twelve of them cost ~5,900.
    const aliases = Array.from({ length: 12 }, (_, i) => `a${i}: _entities(representations: $reps) { ${selection} }`).join(' ');
    const response = await refusedBeforeResolvers(
      () => allotment.graphql(`query ($reps: [_Any!]!) { ${aliases} }`, ACCOUNT_REPS),
      'maxCost',
    );
    expect(response.errors?.[0]?.message).toMatch(/Cost limit of 5000 exceeded/);
  });

  it('refuses more directives than allowed', async () => {
    const directives = Array.from({ length: 51 }, () => '@include(if: true)').join(' ');
    await refusedBeforeResolvers(() => allotment.graphql(`{ __typename ${directives} }`), 'maxDirectives');
  });

  it('lets federation and tooling through: _service, a full introspection query, entity fetches', async () => {
    const sdl = await allotment.graphql('{ _service { sdl } }');
    expect(sdl.errors).toBeUndefined();
    const introspection = await allotment.graphql(
      getIntrospectionQuery({ descriptions: true, directiveIsRepeatable: true, schemaDescription: true, inputValueDeprecation: true }),
    );
    expect(introspection.errors).toBeUndefined();
    expect(introspection.data?.__schema.types.length).toBeGreaterThan(50);
    // The shape of a gateway's query-plan fetch: one _entities call, fragments per type.
    const reps = Array.from({ length: 1000 }, (_, i) => ({ __typename: 'Account', id: `acct_${i}` }));
    const fetch = await allotment.graphql(
      'query ($representations: [_Any!]!) { _entities(representations: $representations) { __typename ... on Account { id contracts { __typename id status startsAt endsAt plan { key version } } } } }',
      { representations: reps },
    );
    expect(fetch.errors).toBeUndefined();
    expect(fetch.data?._entities).toHaveLength(1000);
  });
});

describe('per-field caps hold for the whole operation', () => {
  const checks = (n: number) => Array.from({ length: n }, () => ({ accountId: 'acct_lim', feature: 'f' }));

  it('counts checks of every checkEntitlements alias together, variables included', async () => {
    const query =
      'query ($a: [EntitlementCheckInput!]!, $b: [EntitlementCheckInput!]!) { a: checkEntitlements(checks: $a) { allowed } b: checkEntitlements(checks: $b) { allowed } }';
    const response = await refusedBeforeResolvers(() => allotment.graphql(query, { a: checks(600), b: checks(600) }), 'maxChecks');
    expect(response.errors?.[0]?.message).toMatch(/1200 entitlement checks.*at most 1000/);
    // The same variable under many aliases counts once per alias.
    const reused = Array.from({ length: 11 }, (_, i) => `a${i}: checkEntitlements(checks: $c) { allowed }`).join(' ');
    await refusedBeforeResolvers(
      () => allotment.graphql(`query ($c: [EntitlementCheckInput!]!) { ${reused} }`, { c: checks(100) }),
      'maxChecks',
    );
  });

  it('counts list literals and fragments too, and allows exactly the budget', async () => {
    const literal = (n: number) => `[${Array.from({ length: n }, () => '{ accountId: "acct_lim", feature: "f" }').join(', ')}]`;
    const query = `query ($c: [EntitlementCheckInput!]!) { a: checkEntitlements(checks: ${literal(300)}) { allowed } ...F } fragment F on Query { b: checkEntitlements(checks: $c) { allowed } }`;
    await refusedBeforeResolvers(() => allotment.graphql(query, { c: checks(701) }), 'maxChecks');
    const within = await allotment.graphql(query, { c: checks(700) });
    expect(within.errors).toBeUndefined();
    expect(within.data?.a).toHaveLength(300);
    expect(within.data?.b).toHaveLength(700);
  });

  it('counts usage events of every recordUsageBatch alias together and records none of an over-budget operation', async () => {
    const events = (prefix: string) =>
      Array.from({ length: 600 }, (_, i) => ({
        accountId: 'acct_lim',
        feature: 'api_calls',
        quantity: '1',
        idempotencyKey: `${prefix}-${i}`,
      }));
    const mutation =
      'mutation ($a: [UsageEventInput!]!, $b: [UsageEventInput!]!) { a: recordUsageBatch(events: $a) { accepted } b: recordUsageBatch(events: $b) { accepted } }';
    const before = allotment.commands.length;
    const response = await allotment.graphql(mutation, { a: events('a'), b: events('b') });
    expectRefused(response, 'maxBatchEvents');
    expect(
      requestCommands(allotment, before).filter((event) => ['insert', 'update', 'findAndModify', 'bulkWrite'].includes(event.commandName)),
    ).toEqual([]);
  });

  it('caps _entities representations per operation', async () => {
    const reps = (n: number) => Array.from({ length: n }, (_, i) => ({ __typename: 'Account', id: `acct_${i}` }));
    const query = 'query ($r: [_Any!]!) { _entities(representations: $r) { ... on Account { id } } }';
    await refusedBeforeResolvers(() => allotment.graphql(query, { r: reps(1001) }), 'maxEntities');
    const twice =
      'query ($r: [_Any!]!) { a: _entities(representations: $r) { ... on Account { id } } b: _entities(representations: $r) { ... on Account { id } } }';
    await refusedBeforeResolvers(() => allotment.graphql(twice, { r: reps(501) }), 'maxEntities');
  });
});

describe('limits are configurable', () => {
  it('reads every limit from the environment, with documented defaults', () => {
    expect(loadConfig({ NODE_ENV: 'test' }).limits).toEqual({
      maxBodyBytes: 1024 * 1024,
      maxTokens: 10_000,
      maxDepth: 10,
      maxAliases: 30,
      maxDirectives: 50,
      maxCost: 5_000,
      maxEntities: 1_000,
      maxChecks: 1_000,
      maxBatchEvents: 1_000,
    });
    expect(loadConfig({ NODE_ENV: 'test', LIMIT_MAX_DEPTH: '4', LIMIT_MAX_ENTITIES: '50' }).limits).toMatchObject({
      maxDepth: 4,
      maxEntities: 50,
    });
    expect(() => loadConfig({ NODE_ENV: 'test', LIMIT_MAX_CHECKS: '5000' })).toThrow(/LIMIT_MAX_CHECKS/);
  });

  it('applies configured limits', async () => {
    const strict = await startTestInstance({ env: { LIMIT_MAX_DEPTH: '4', LIMIT_MAX_ENTITIES: '2', LIMIT_MAX_BODY_BYTES: '20000' } });
    try {
      expectRefused(await strict.graphql(nestedContracts(2), ACCOUNT_REPS), 'maxDepth');
      const three = { reps: [1, 2, 3].map((i) => ({ __typename: 'Account', id: `acct_${i}` })) };
      expectRefused(
        await strict.graphql('query ($reps: [_Any!]!) { _entities(representations: $reps) { ... on Account { id } } }', three),
        'maxEntities',
      );
      const big = await strict.graphql('{ __typename }', { padding: 'x'.repeat(20_000) });
      expectRefused(big, 'maxBodyBytes', 413);
      expect((await strict.graphql('{ __typename }')).data).toEqual({ __typename: 'Query' });
    } finally {
      await strict.stop();
    }
  });
});

describe('the body cap fits the largest legitimate request', () => {
  it('takes a 1,000-event batch with realistic properties and refuses a body over 1 MiB with 413', async () => {
    await defineUsageFeatures(allotment);
    const { accountId } = await meteredAccount(allotment, { included: null, enforcement: 'NONE' });
    const events = Array.from({ length: 1000 }, (_, i) => ({
      accountId,
      feature: 'api_calls',
      quantity: '1',
      idempotencyKey: `req_${i.toString().padStart(4, '0')}-5b1e7c62-9d0f-4a7e-8c53-2f61d9a0b4e1`,
      timestamp: new Date().toISOString(),
      properties: {
        endpoint: '/v1/projects/{projectId}/search',
        method: 'POST',
        region: 'eu-west-1',
        status: 200,
        latencyMs: 183,
        userAgent: 'acme-sdk-python/3.12.1',
        requestId: '0f8e2b7c-1a4d-4e59-9b3c-7d6a5e4f3c2b',
      },
    }));
    const query = 'mutation ($events: [UsageEventInput!]!) { recordUsageBatch(events: $events) { accepted duplicates rejected } }';
    const size = Buffer.byteLength(JSON.stringify({ query, variables: { events } }));
    expect(size).toBeGreaterThan(300_000);
    expect(size).toBeLessThan((1024 * 1024) / 2);
    const accepted = await allotment.graphql(query, { events });
    expect(accepted.errors).toBeUndefined();
    expect(accepted.data?.recordUsageBatch).toEqual({ accepted: 1000, duplicates: 0, rejected: 0 });

    const tooBig = await allotment.graphql('{ __typename }', { padding: 'x'.repeat(1024 * 1024) });
    expectRefused(tooBig, 'maxBodyBytes', 413);
  });
});

describe('unauthenticated requests cost nothing', () => {
  it('answers 401 before reading the body: invalid JSON and oversized bodies without a token get 401', async () => {
    const garbage = await fetch(allotment.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{not json' });
    expect(garbage.status).toBe(401);
    expect(((await garbage.json()) as GraphQLResponse).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');

    const huge = await fetch(allotment.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer not-a-jwt' },
      body: JSON.stringify({ query: `{ ${Array.from({ length: 30_000 }, (_, i) => `a${i}: __typename`).join(' ')} }` }),
    });
    expect(huge.status).toBe(401);
    expect(((await huge.json()) as GraphQLResponse).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });

  it('refuses a 30,000-alias query without a token with 401 and no data', async () => {
    const before = allotment.commands.length;
    const response = await allotment.graphql(
      `{ ${Array.from({ length: 30_000 }, (_, i) => `a${i}: checkEntitlement(accountId: "acct_lim", feature: "f") { allowed }`).join(' ')} }`,
      {},
      { token: null },
    );
    expect(response.status).toBe(401);
    expect(response.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect(response.data).toBeUndefined();
    expect(requestCommands(allotment, before)).toEqual([]);
  });

  it('still runs an authenticated request normally', async () => {
    expect((await allotment.graphql('{ __typename }')).data).toEqual({ __typename: 'Query' });
  });
});

describe('the WebSocket path applies the same limits', () => {
  async function overWebSocket(query: string, variables: Record<string, unknown> = {}) {
    const token = await signToken();
    const client = createClient({
      url: allotment.wsUrl,
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${token}` },
      retryAttempts: 0,
      lazy: true,
    });
    try {
      return await new Promise<{ data?: unknown; errors?: GraphQLResponse['errors'] }>((resolve, reject) => {
        let result: { data?: unknown; errors?: GraphQLResponse['errors'] } = {};
        client.subscribe(
          { query, variables },
          {
            next: (value) => (result = value as typeof result),
            error: (error) => (Array.isArray(error) ? resolve({ errors: error as GraphQLResponse['errors'] }) : reject(error)),
            complete: () => resolve(result),
          },
        );
      });
    } finally {
      await client.dispose();
    }
  }

  it('refuses depth, the operation budget and token floods with QUERY_TOO_COMPLEX', async () => {
    const deep = await overWebSocket(nestedContracts(19), ACCOUNT_REPS);
    expect(deep.errors?.[0]?.extensions?.code).toBe('QUERY_TOO_COMPLEX');
    expect(deep.errors?.[0]?.extensions?.limit).toBe('maxDepth');

    const checks = Array.from({ length: 600 }, () => ({ accountId: 'acct_lim', feature: 'f' }));
    const budget = await overWebSocket(
      'query ($c: [EntitlementCheckInput!]!) { a: checkEntitlements(checks: $c) { allowed } b: checkEntitlements(checks: $c) { allowed } }',
      { c: checks },
    );
    expect(budget.errors?.[0]?.extensions?.code).toBe('QUERY_TOO_COMPLEX');
    expect(budget.errors?.[0]?.extensions?.limit).toBe('maxChecks');

    const flood = await overWebSocket(`{ ${Array.from({ length: 12_000 }, () => '__typename').join(' ')} }`);
    expect(flood.errors?.[0]?.extensions?.limit).toBe('maxTokens');

    const fine = await overWebSocket('{ __typename }');
    expect(fine.data).toEqual({ __typename: 'Query' });
  });
});
