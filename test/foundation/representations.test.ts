import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestCommands, signToken, startTestInstance, type TestInstance } from '../support/harness.js';
import { insertContracts } from '../support/seed.js';

/** `_entities` takes what a gateway sends: representations are type-checked, contracts cannot be probed. */
let allotment: TestInstance;

beforeAll(async () => {
  allotment = await startTestInstance();
  await insertContracts(allotment.database.db, [
    { _id: 'ctr_rep_mine', accountId: 'acct_rep_mine' },
    { _id: 'ctr_rep_theirs', accountId: 'acct_rep_theirs' },
  ]);
});
afterAll(() => allotment.stop());

const ENTITIES =
  'query ($reps: [_Any!]!) { _entities(representations: $reps) { ... on Account { id contracts { id } } ... on Contract { id } } }';

describe('representation ids are type-checked', () => {
  const malformed: Array<[string, unknown]> = [
    ['an operator object as Account id', { __typename: 'Account', id: { $ne: null } }],
    ['an operator object as Contract id', { __typename: 'Contract', id: { $ne: null } }],
    ['a missing id', { __typename: 'Contract' }],
    ['a numeric id', { __typename: 'Account', id: 42 }],
    ['an empty id', { __typename: 'Account', id: '' }],
    ['an unknown __typename', { __typename: 'Nope', id: 'x' }],
    ['a non-entity type', { __typename: 'Feature', id: 'x' }],
    ['a root type', { __typename: 'Query', id: 'x' }],
    ['a missing __typename', { id: 'x' }],
    ['a non-object', 'Account:x'],
  ];

  it.each(malformed)('answers %s with BAD_USER_INPUT and no database query', async (_label, representation) => {
    const before = allotment.commands.length;
    const response = await allotment.graphql(ENTITIES, { reps: [{ __typename: 'Account', id: 'acct_rep_mine' }, representation] });
    expect(response.status).toBe(400);
    expect(response.errors?.[0]?.extensions?.code, JSON.stringify(response.errors)).toBe('BAD_USER_INPUT');
    expect(response.errors?.[0]?.message).toMatch(/representations\[1\]/);
    expect(requestCommands(allotment, before).filter((event) => event.commandName === 'find')).toEqual([]);
  });

  it('checks representations written as literals too', async () => {
    const response = await allotment.graphql(
      '{ _entities(representations: [{ __typename: "Contract", id: { _ne: null } }]) { ... on Contract { id } } }',
    );
    expect(response.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });

  it('still resolves well-formed representations', async () => {
    const response = await allotment.graphql(ENTITIES, {
      reps: [
        { __typename: 'Account', id: 'acct_rep_mine' },
        { __typename: 'Contract', id: 'ctr_rep_theirs' },
      ],
    });
    expect(response.errors).toBeUndefined();
    expect(response.data?._entities).toEqual([{ id: 'acct_rep_mine', contracts: [{ id: 'ctr_rep_mine' }] }, { id: 'ctr_rep_theirs' }]);
  });
});

describe('no probing of contracts', () => {
  const CONTRACT = 'query ($reps: [_Any!]!) { _entities(representations: $reps) { ... on Contract { id status } } }';
  const contract = (id: string) => ({ reps: [{ __typename: 'Contract', id }] });

  it("answers a customer the same for another account's contract and a missing one, naming no account", async () => {
    const token = await signToken({ sub: 'user_rep', scope: 'entitlements:read', account_id: 'acct_rep_mine' });
    const theirs = await allotment.graphql(CONTRACT, contract('ctr_rep_theirs'), { token });
    const missing = await allotment.graphql(CONTRACT, contract('ctr_rep_nope__'), { token });
    const normalise = (response: typeof theirs) =>
      JSON.stringify(response).replaceAll('ctr_rep_theirs', 'ID').replaceAll('ctr_rep_nope__', 'ID');
    expect(normalise(theirs)).toBe(normalise(missing));
    expect(theirs.status).toBe(missing.status);
    expect(theirs.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(theirs.data?._entities).toEqual([null]);
    expect(JSON.stringify(theirs)).not.toContain('acct_rep_theirs');

    const own = await allotment.graphql(CONTRACT, contract('ctr_rep_mine'), { token });
    expect(own.errors).toBeUndefined();
    expect(own.data?._entities).toEqual([{ id: 'ctr_rep_mine', status: 'ACTIVE' }]);
  });

  it('authorises before loading: a token without the scope is refused without a database query', async () => {
    const token = await signToken({ sub: 'svc_rep', scope: 'usage:write' });
    const before = allotment.commands.length;
    const response = await allotment.graphql(CONTRACT, contract('ctr_rep_theirs'), { token });
    expect(response.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(requestCommands(allotment, before).filter((event) => event.commandName === 'find')).toEqual([]);
  });

  it('lets a service token see any contract, and null for an unknown one', async () => {
    const response = await allotment.graphql(CONTRACT, {
      reps: [
        { __typename: 'Contract', id: 'ctr_rep_theirs' },
        { __typename: 'Contract', id: 'ctr_rep_unknown' },
      ],
    });
    expect(response.errors).toBeUndefined();
    expect(response.data?._entities).toEqual([{ id: 'ctr_rep_theirs', status: 'ACTIVE' }, null]);
  });
});
