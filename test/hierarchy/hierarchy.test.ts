/**
 * setAccountParent (R13): parents and children, depth ≤ 5, cycles and self-parenting
 * refused, also when two concurrent moves on two instances would make a cycle together.
 * Every move is audited, and needs contracts:write.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCode, gql } from '../support/fixtures.js';
import { signToken, startTestInstance, type TestInstance } from '../support/harness.js';
import { ACCOUNT_TREE, accountName, setParent } from './fixtures.js';

let one: TestInstance;
let two: TestInstance;
beforeAll(async () => {
  one = await startTestInstance();
  two = await startTestInstance({ dbName: one.dbName });
});
afterAll(async () => {
  await two?.stop();
  await one?.stop();
});

async function tree(instance: TestInstance, id: string) {
  return (await gql(instance, ACCOUNT_TREE, { id }))._entities[0];
}

/** A chain root → … → leaf of `length` accounts; returns them root first. */
async function chain(length: number): Promise<string[]> {
  const ids = Array.from({ length }, () => accountName('chain'));
  for (let i = 1; i < ids.length; i++) expect((await setParent(one, ids[i]!, ids[i - 1]!)).errors).toBeUndefined();
  return ids;
}

describe('setAccountParent', () => {
  it('places, lists, moves and detaches, and each instance sees the change at once', async () => {
    const [parent, other, child] = [accountName(), accountName(), accountName()];
    const placed = await gql(one, `mutation ($a: ID!, $p: ID) { setAccountParent(accountId: $a, parentId: $p) { id parent { id } } }`, {
      a: child,
      p: parent,
    });
    expect(placed.setAccountParent).toEqual({ id: child, parent: { id: parent } });
    expect(await tree(two, parent)).toEqual({ id: parent, parent: null, children: [{ id: child }] });

    await gql(two, `mutation ($a: ID!, $p: ID) { setAccountParent(accountId: $a, parentId: $p) { id } }`, { a: child, p: other });
    expect((await tree(one, child)).parent).toEqual({ id: other });
    expect((await tree(one, parent)).children).toEqual([]);
    expect((await tree(one, other)).children).toEqual([{ id: child }]);

    await gql(one, `mutation ($a: ID!) { setAccountParent(accountId: $a, parentId: null) { id } }`, { a: child });
    expect(await tree(two, child)).toEqual({ id: child, parent: null, children: [] });
  });

  it('refuses self-parenting and a cycle with BAD_USER_INPUT', async () => {
    const self = accountName();
    const refused = await setParent(one, self, self);
    expect(errorCode(refused as never)).toBe('BAD_USER_INPUT');
    expect(refused.errors![0]!.message).toContain('its own parent');

    const [root, middle, leaf] = await chain(3);
    const cycle = await setParent(one, root!, leaf!);
    expect(errorCode(cycle as never)).toBe('BAD_USER_INPUT');
    expect(cycle.errors![0]!.message).toContain('cycle');
    expect((await tree(one, root!)).parent).toBeNull();
    expect((await tree(one, middle!)).parent).toEqual({ id: root });
  });

  it('allows 5 accounts deep and refuses a 6th level, also by moving a subtree', async () => {
    const ids = await chain(5);
    const sixth = await setParent(one, accountName(), ids[4]!);
    expect(errorCode(sixth as never)).toBe('BAD_USER_INPUT');
    expect(sixth.errors![0]!.message).toContain('6 accounts deep');

    // A two-level subtree under the 4th account would make 6 too.
    const [top, below] = await chain(2);
    const moved = await setParent(one, top!, ids[3]!);
    expect(errorCode(moved as never)).toBe('BAD_USER_INPUT');
    expect((await tree(one, top!)).parent).toBeNull();
    expect((await tree(one, below!)).parent).toEqual({ id: top });
    // …while under the 3rd it fits (5 deep).
    expect((await setParent(one, top!, ids[2]!)).errors).toBeUndefined();
  });

  it('refuses one of two concurrent cross-moves on two instances: never a cycle', async () => {
    for (let round = 0; round < 10; round++) {
      const [a, b] = [accountName('x'), accountName('y')];
      const [first, second] = await Promise.all([setParent(one, a, b), setParent(two, b, a)]);
      const outcomes = [first, second].map((response) => (response.errors ? errorCode(response as never) : 'OK')).sort();
      expect(outcomes).toEqual(['BAD_USER_INPUT', 'OK']);
      const parents = [(await tree(one, a)).parent?.id ?? null, (await tree(one, b)).parent?.id ?? null];
      expect(parents.filter((parent) => parent !== null)).toHaveLength(1);
    }
  });

  it('refuses a three-way concurrent cycle on two instances', async () => {
    for (let round = 0; round < 5; round++) {
      const [a, b, c] = [accountName('a'), accountName('b'), accountName('c')];
      const results = await Promise.all([setParent(one, a, b), setParent(two, b, c), setParent(one, c, a)]);
      expect(results.filter((response) => response.errors).map((response) => errorCode(response as never))).toEqual(['BAD_USER_INPUT']);
    }
  });

  it('is audited with before and after, and needs contracts:write', async () => {
    const [parent, child] = [accountName(), accountName()];
    await setParent(one, child, parent);
    await setParent(one, child, null);
    const audit = await one.database.db
      .collection('audit_log')
      .find({ targetId: child, action: 'account.parent_set' })
      .sort({ at: 1 })
      .toArray();
    expect(audit.map((entry) => [entry.before, entry.after, entry.actor])).toEqual([
      [{ parentId: null }, { parentId: parent }, 'test-operator'],
      [{ parentId: parent }, { parentId: null }, 'test-operator'],
    ]);
    // Placing it where it already is moves nothing, and is audited too.
    await setParent(one, child, null);
    expect(await one.database.db.collection('audit_log').countDocuments({ targetId: child, action: 'account.parent_unchanged' })).toBe(1);
    const readOnly = await signToken({ scope: 'entitlements:read' });
    const denied = await one.graphql(
      `mutation { setAccountParent(accountId: "${accountName()}", parentId: "${parent}") { id } }`,
      {},
      { token: readOnly },
    );
    expect(errorCode(denied as never)).toBe('FORBIDDEN');
  });
});
