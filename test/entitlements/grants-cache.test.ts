/**
 * The grants cache (docs/performance.md, "Terms cache"): a warm check selecting capacity
 * and remaining sends only the counters query, and a warm recordUsage no `find grants`; a
 * grant issued or voided on the same instance is seen at once by the next check and
 * recordUsage, one issued on another instance within the bound (and never old again after
 * it), and a stalled feed makes the other instance read through. The cache holds
 * documents: whether a grant counts at an instant is worked out on every read.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gql } from '../support/fixtures.js';
import { requestCommands, startTestInstance, type TestInstance } from '../support/harness.js';
import { expectSeenWithinBound, feedsCaughtUp, sleep, TERMS_STALENESS_MS } from '../support/terms-cache.js';
import { defineUsageFeatures, key, meteredAccount, recordUsage, recordUsageOk } from '../support/usage-fixtures.js';
import { HOUR, floorHour, iso, issueGrantOk, voidGrantOk } from '../grants/fixtures.js';

const CHECKS = `query ($checks: [EntitlementCheckInput!]!) {
  checkEntitlements(checks: $checks) { accountId feature allowed reason used capacity remaining } }`;
const CHECK_AT = `query ($a: ID!, $f: ID!, $u: Decimal, $at: DateTime) {
  checkEntitlement(accountId: $a, feature: $f, requestedUnits: $u, at: $at) { allowed reason capacity remaining } }`;

import type { Check } from './mixed-pairs.js';

/** Two instances with the default bound (500 ms), on one database. */
let a: TestInstance;
let b: TestInstance;
/** One with a long bound, for what must not depend on the feed's polls keeping up on a busy machine. */
let steady: TestInstance;
/** The cache off: what every check decides without it. */
let off: TestInstance;
beforeAll(async () => {
  a = await startTestInstance();
  b = await startTestInstance({ dbName: a.dbName });
  steady = await startTestInstance({ dbName: a.dbName, env: { TERMS_CACHE_STALENESS_MS: '30000' } });
  off = await startTestInstance({ dbName: a.dbName, env: { TERMS_CACHE_STALENESS_MS: '0' } });
  await defineUsageFeatures(a);
});
afterAll(async () => {
  for (const instance of [off, steady, b, a]) await instance?.stop();
});

async function check(instance: TestInstance, checks: Check[]) {
  return (await gql(instance, CHECKS, { checks })).checkEntitlements as Array<Record<string, unknown>>;
}

function commandsSince(instance: TestInstance, from: number): string[] {
  return requestCommands(instance, from).map((event) => `${event.commandName} ${event.command[event.commandName]}`);
}

/** Stops the grants feed (and the terms feed): entries stay served until the (long) bound passes. */
async function pauseFeeds(instance: TestInstance): Promise<void> {
  await instance.services.grantsCache.stop();
  await instance.services.termsCache.stop();
}

async function resumeFeeds(instance: TestInstance): Promise<void> {
  await instance.services.termsCache.start();
  await instance.services.grantsCache.start();
}

describe('a warm grants cache', () => {
  it('answers a second checkEntitlements selecting capacity and remaining with the counters query alone', async () => {
    const accounts = await Promise.all(Array.from({ length: 10 }, () => meteredAccount(a, { included: '5' })));
    await Promise.all(accounts.slice(0, 5).map(({ accountId }) => issueGrantOk(a, { accountId, amount: '20' })));
    const checks: Check[] = accounts.flatMap(({ accountId }) => [
      { accountId, feature: 'api_calls', requestedUnits: '10' }, // beyond included: grants decide
      { accountId, feature: 'sso' },
    ]);
    await feedsCaughtUp(steady);
    await check(steady, checks);
    const before = steady.commands.length;
    const answer = await check(steady, checks);
    const commands = commandsSince(steady, before);
    console.info('warm checkEntitlements(capacity remaining) commands', JSON.stringify(commands));
    expect(commands).toEqual(['find usage_counters']);
    expect(answer).toEqual(await check(off, checks));
    expect(answer[0]).toMatchObject({ allowed: true, reason: 'WITHIN_GRANTS', capacity: '25', remaining: '25' });
    expect(answer[10]).toMatchObject({ allowed: false, capacity: '5' });
  });

  it('sends no find grants for a second single recordUsage', async () => {
    const { accountId } = await meteredAccount(a, { included: '5' });
    await issueGrantOk(a, { accountId, amount: '100' });
    await feedsCaughtUp(steady);
    await recordUsageOk(steady, { accountId, feature: 'api_calls', quantity: '6', idempotencyKey: key() });
    await sleep(200);
    const before = steady.commands.length;
    const receipt = await recordUsageOk(steady, { accountId, feature: 'api_calls', quantity: '6', idempotencyKey: key() });
    await sleep(200); // the pending entry's pull goes out after the answer
    const commands = commandsSince(steady, before);
    console.info('warm recordUsage commands', JSON.stringify(commands));
    expect(commands.filter((command) => command.startsWith('find grants'))).toEqual([]);
    expect(commands).toContain('findAndModify usage_counters');
    expect(receipt).toMatchObject({ status: 'ACCEPTED', reason: 'WITHIN_GRANTS' });
  });

  it('works out on every read whether a cached grant has started or expired', async () => {
    const { accountId } = await meteredAccount(a, { included: '5', resetPeriod: 'NEVER' });
    const start = floorHour(Date.now()) + 2 * HOUR;
    await issueGrantOk(a, { accountId, amount: '50', effectiveAt: iso(start), expiresAt: iso(start + 2 * HOUR) });
    const at = (ms: number) => gql(steady, CHECK_AT, { a: accountId, f: 'api_calls', u: '10', at: iso(ms) });
    await at(Date.now()); // cached from here on
    await pauseFeeds(steady);
    try {
      const before = steady.commands.length;
      const answers = [
        (await at(Date.now())).checkEntitlement,
        (await at(start + HOUR)).checkEntitlement,
        (await at(start + 3 * HOUR)).checkEntitlement,
      ];
      expect(commandsSince(steady, before).filter((command) => command.startsWith('find grants'))).toEqual([]);
      expect(answers).toEqual([
        expect.objectContaining({ allowed: false, capacity: '5' }), // not started yet
        expect.objectContaining({ allowed: true, reason: 'WITHIN_GRANTS', capacity: '55' }),
        expect.objectContaining({ allowed: false, capacity: '5' }), // expired
      ]);
      for (const ms of [Date.now(), start + HOUR, start + 3 * HOUR]) {
        const asOff = await gql(off, CHECK_AT, { a: accountId, f: 'api_calls', u: '10', at: iso(ms) });
        expect((await at(ms)).checkEntitlement).toEqual(asOff.checkEntitlement);
      }
    } finally {
      await resumeFeeds(steady);
    }
  });
});

describe('a grant issued or voided on the same instance', () => {
  it('is seen at once by the next check and recordUsage, with no poll', async () => {
    const { accountId } = await meteredAccount(a, { included: '3' });
    const checks: Check[] = [{ accountId, feature: 'api_calls', requestedUnits: '5' }];
    await check(steady, checks);
    await recordUsage(steady, { accountId, feature: 'api_calls', quantity: '5', idempotencyKey: key() }); // refused, warms
    await pauseFeeds(steady); // no poll can invalidate from here on
    try {
      expect((await check(steady, checks))[0]).toMatchObject({ allowed: false, capacity: '3' });
      const grant = await issueGrantOk(steady, { accountId, amount: '10' });
      expect((await check(steady, checks))[0]).toMatchObject({ allowed: true, reason: 'WITHIN_GRANTS', capacity: '13', remaining: '13' });
      expect(await recordUsageOk(steady, { accountId, feature: 'api_calls', quantity: '5', idempotencyKey: key() })).toMatchObject({
        status: 'ACCEPTED',
        reason: 'WITHIN_GRANTS',
      });
      await voidGrantOk(steady, grant.id);
      const voided = (await check(steady, checks))[0]!;
      expect(voided).toMatchObject({ allowed: false });
      expect(voided).toEqual((await check(off, checks))[0]);
      expect(
        (await recordUsage(steady, { accountId, feature: 'api_calls', quantity: '5', idempotencyKey: key() })).data?.recordUsage,
      ).toMatchObject({
        status: 'REJECTED',
      });
    } finally {
      await resumeFeeds(steady);
    }
  });
});

describe('a grant issued on another instance', () => {
  it('is seen within the bound, and never answered old after it', async () => {
    const { accountId } = await meteredAccount(a, { included: '3' });
    const checks: Check[] = [{ accountId, feature: 'api_calls', requestedUnits: '5' }];
    expect((await check(b, checks))[0]).toMatchObject({ allowed: false });
    await issueGrantOk(a, { accountId, amount: '10' });
    await expectSeenWithinBound(
      async () => (await check(b, checks))[0]!.allowed,
      (allowed) => allowed === true,
    );
  });

  it('is read through at once while the feed is stalled', async () => {
    const { accountId } = await meteredAccount(a, { included: '3' });
    const checks: Check[] = [{ accountId, feature: 'api_calls', requestedUnits: '5' }];
    await check(b, checks); // cached from here on, while the feed is healthy
    await pauseFeeds(b);
    try {
      await sleep(TERMS_STALENESS_MS + 50);
      await issueGrantOk(a, { accountId, amount: '10' });
      const before = b.commands.length;
      expect((await check(b, checks))[0]).toMatchObject({ allowed: true, reason: 'WITHIN_GRANTS' });
      expect(commandsSince(b, before)).toContain('find grants');
    } finally {
      await resumeFeeds(b);
    }
  });
});
