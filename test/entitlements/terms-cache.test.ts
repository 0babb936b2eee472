/**
 * The terms cache (docs/performance.md, "Terms cache"): a warm check sends only the counters
 * query and a warm recordUsage no `find contracts`; a terms change made on the same
 * instance is seen at once, one made on another instance within the bound (500 ms), and a
 * stalled feed makes the other instance read through. Decisions always equal those of an
 * instance with the cache off.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mixedPairs, type Check } from './mixed-pairs.js';
import { gql, publishPlan, upsertContract } from '../support/fixtures.js';
import { requestCommands, startTestInstance, type TestInstance } from '../support/harness.js';
import { expectSeenWithinBound, feedsCaughtUp, sleep, TERMS_STALENESS_MS } from '../support/terms-cache.js';
import { defineUsageFeatures, key, meteredAccount, recordUsageOk } from '../support/usage-fixtures.js';
import { defineAiFeatures } from '../credits/fixtures.js';
import { accountName, pool, setLimit, setParent } from '../hierarchy/fixtures.js';

const CHECKS = `query ($checks: [EntitlementCheckInput!]!) { checkEntitlements(checks: $checks) { accountId feature allowed reason used } }`;
const CHANGE_PLAN = `mutation ($c: ID!, $p: ID!) { changeContractPlan(contractId: $c, planKey: $p) { id } }`;
const OVERRIDE = `mutation ($c: ID!, $input: EntitlementOverrideInput!) { setEntitlementOverride(contractId: $c, input: $input) { id } }`;
const ATTACH = `mutation ($c: ID!, $k: ID!) { attachAddOn(contractId: $c, addOnKey: $k) { id } }`;
const DETACH = `mutation ($c: ID!, $k: ID!) { detachAddOn(contractId: $c, addOnKey: $k) { id } }`;
const STATUS = `mutation ($c: ID!, $s: ContractStatus!) { setContractStatus(contractId: $c, status: $s) { id } }`;

/** Two instances with the default bound (500 ms), on one database. */
let a: TestInstance;
let b: TestInstance;
/**
 * Two more with a long bound, for what must not depend on the feed's polls keeping up on a
 * busy machine: warm round trips, and entries served while the feeds are paused.
 */
let steady: TestInstance;
let steady2: TestInstance;
/** The cache off: what every check decides without it. */
let off: TestInstance;
beforeAll(async () => {
  a = await startTestInstance();
  b = await startTestInstance({ dbName: a.dbName });
  const long = { TERMS_CACHE_STALENESS_MS: '30000' };
  steady = await startTestInstance({ dbName: a.dbName, env: long });
  steady2 = await startTestInstance({ dbName: a.dbName, env: long });
  off = await startTestInstance({ dbName: a.dbName, env: { TERMS_CACHE_STALENESS_MS: '0' } });
  await defineUsageFeatures(a);
  await defineAiFeatures(a);
});
afterAll(async () => {
  for (const instance of [off, steady2, steady, b, a]) await instance?.stop();
});

async function check(instance: TestInstance, checks: Check[]) {
  return (await gql(instance, CHECKS, { checks })).checkEntitlements as Array<Record<string, unknown>>;
}

/** Stops both feeds (contracts, hierarchy revision): entries stay served until the bound passes. */
async function pauseFeeds(instance: TestInstance): Promise<void> {
  await instance.services.termsCache.stop();
  await instance.services.hierarchy.membership.stop();
}

async function resumeFeeds(instance: TestInstance): Promise<void> {
  await instance.services.hierarchy.membership.start();
  await instance.services.termsCache.start();
}

function commandsSince(instance: TestInstance, from: number): string[] {
  return requestCommands(instance, from).map((event) => `${event.commandName} ${event.command[event.commandName]}`);
}

describe('a warm terms cache', () => {
  it('answers a second checkEntitlements of 100 mixed pairs with the counters query alone', async () => {
    const { shared, checks } = await mixedPairs(a);
    await recordUsageOk(a, { accountId: shared.members[0]!, feature: 'api_calls', quantity: '3', idempotencyKey: key() });
    for (const instance of [steady, steady2]) {
      await feedsCaughtUp(instance);
      await check(instance, checks);
      const before = instance.commands.length;
      const answer = await check(instance, checks);
      const commands = commandsSince(instance, before);
      console.info('warm checkEntitlements(100 mixed pairs) commands', JSON.stringify(commands));
      expect(commands).toEqual(['find usage_counters']);
      expect(answer).toEqual(await check(off, checks));
      expect(answer[60]).toMatchObject({ used: '3', allowed: true });
    }
  });

  it('sends no find contracts (nor hierarchy read) for a second single recordUsage', async () => {
    const { accountId } = await meteredAccount(a, { included: '1000' });
    const shared = await pool(a, { included: '1000', members: 1 });
    await feedsCaughtUp(steady);
    for (const target of [accountId, shared.members[0]!]) {
      await recordUsageOk(steady, { accountId: target, feature: 'api_calls', quantity: '1', idempotencyKey: key() });
      await sleep(200);
      const before = steady.commands.length;
      await recordUsageOk(steady, { accountId: target, feature: 'api_calls', quantity: '1', idempotencyKey: key() });
      await sleep(200); // the pending entry's pull goes out after the answer
      const commands = commandsSince(steady, before);
      console.info('warm recordUsage commands', JSON.stringify(commands));
      expect(commands.filter((command) => command.startsWith('find contracts') || command.startsWith('find account_hierarchy'))).toEqual(
        [],
      );
      expect(commands).toContain('findAndModify usage_counters');
    }
    // Counters are never cached: every instance sees both postings at once.
    for (const instance of [steady, steady2, a])
      expect((await check(instance, [{ accountId, feature: 'api_calls' }]))[0]).toMatchObject({ used: '2' });
  });
});

/** A metered account on plan "roomy" (included 100), and plan "tight" (included 3) to move it to. */
async function planPair() {
  const account = await meteredAccount(a, { included: '100' });
  const tight = `tight_${account.planKey}`;
  await publishPlan(a, {
    key: tight,
    name: 'Tight',
    currency: 'USD',
    entitlements: [{ feature: 'api_calls', included: '3', enforcement: 'HARD' }, { feature: 'sso' }],
  });
  return { ...account, tight };
}

describe('a terms change on the same instance', () => {
  it('is seen at once, for every kind of contract and hierarchy write', async () => {
    const { accountId, contractId, tight } = await planPair();
    const boosted = await meteredAccount(a, { included: '10' });
    const boost = `boost_${boosted.planKey}`;
    await gql(a, `mutation ($input: AddOnInput!) { publishAddOn(input: $input) { key } }`, {
      input: { key: boost, name: 'Boost', currency: 'USD', price: '1', entitlements: [{ feature: 'api_calls', included: '1000' }] },
    });
    const owner = await pool(a, { included: '50', members: 0 });
    const member = accountName('member');
    const newcomer = accountName('new');
    const req = (id: string, units = '5'): Check[] => [{ accountId: id, feature: 'api_calls', requestedUnits: units }];
    const scenarios: Array<{ name: string; checks: Check[]; write: (on: TestInstance) => Promise<unknown> }> = [
      { name: 'plan change', checks: req(accountId), write: (on) => gql(on, CHANGE_PLAN, { c: contractId, p: tight }) },
      {
        name: 'override',
        checks: req(accountId, '50'),
        write: (on) => gql(on, OVERRIDE, { c: contractId, input: { feature: 'api_calls', included: '60' } }),
      },
      {
        name: 'add-on attached',
        checks: req(boosted.accountId, '500'),
        write: (on) => gql(on, ATTACH, { c: boosted.contractId, k: boost }),
      },
      {
        name: 'add-on detached',
        checks: req(boosted.accountId, '500'),
        write: (on) => gql(on, DETACH, { c: boosted.contractId, k: boost }),
      },
      { name: 'cancel', checks: req(accountId, '1'), write: (on) => gql(on, STATUS, { c: contractId, s: 'CANCELED' }) },
      {
        name: 'new contract',
        checks: req(newcomer),
        write: (on) => upsertContract(on, { id: `ctr_${newcomer}`, accountId: newcomer, planKey: tight, startsAt: '2026-01-01T00:00:00Z' }),
      },
      { name: 'attach to a pool', checks: req(member), write: (on) => setParent(on, member, owner.ownerId) },
      { name: 'cap', checks: req(member), write: (on) => setLimit(on, member, 'api_calls', '2') },
      { name: 'detach', checks: req(member, '1'), write: (on) => setParent(on, member, null) },
    ];
    try {
      for (const { name, checks, write } of scenarios) {
        await resumeFeeds(steady);
        for (const instance of [steady, steady2]) await check(instance, checks); // warm both
        const before = await check(steady, checks);
        // No poll can invalidate from here on; the entries stay served for the (long) bound.
        await pauseFeeds(steady);
        await write(steady);
        const after = await check(steady, checks);
        expect(after, name).toEqual(await check(off, checks));
        expect(after, name).not.toEqual(before);
      }
    } finally {
      await resumeFeeds(steady);
    }
  });
});

describe('a terms change on another instance', () => {
  it('is seen within the bound, and never answered old after it', async () => {
    const { accountId, contractId, tight } = await planPair();
    const checks: Check[] = [{ accountId, feature: 'api_calls', requestedUnits: '5' }];
    expect((await check(b, checks))[0]).toMatchObject({ allowed: true });
    await gql(a, CHANGE_PLAN, { c: contractId, p: tight });
    await expectSeenWithinBound(
      async () => (await check(b, checks))[0]!.allowed,
      (allowed) => allowed === false,
    );
  });

  it('follows a move within the bound', async () => {
    const big = await pool(a, { included: '100', members: 1 });
    const small = await pool(a, { included: '2', members: 0 });
    const member = big.members[0]!;
    const checks: Check[] = [{ accountId: member, feature: 'api_calls', requestedUnits: '5' }];
    expect((await check(b, checks))[0]).toMatchObject({ allowed: true });
    expect((await setParent(a, member, small.ownerId)).errors).toBeUndefined();
    await sleep(TERMS_STALENESS_MS + 50);
    expect((await check(b, checks))[0]).toMatchObject({ allowed: false, reason: 'QUOTA_EXCEEDED' });
  });

  it('is read through at once while the feed is stalled', async () => {
    const { accountId, contractId, tight } = await planPair();
    const big = await pool(a, { included: '100', members: 1 });
    const small = await pool(a, { included: '2', members: 0 });
    const member = big.members[0]!;
    const checks: Check[] = [
      { accountId, feature: 'api_calls', requestedUnits: '5' },
      { accountId: member, feature: 'api_calls', requestedUnits: '5' },
    ];
    await check(b, checks); // cached from here on, while the feed is healthy
    await pauseFeeds(b);
    try {
      await sleep(TERMS_STALENESS_MS + 50);
      await gql(a, CHANGE_PLAN, { c: contractId, p: tight });
      expect((await setParent(a, member, small.ownerId)).errors).toBeUndefined();
      const before = b.commands.length;
      const answer = await check(b, checks);
      expect(answer.map((decision) => decision.allowed)).toEqual([false, false]);
      expect(commandsSince(b, before)).toEqual(expect.arrayContaining(['find contracts', 'find account_hierarchy']));
    } finally {
      await resumeFeeds(b);
    }
  });
});
