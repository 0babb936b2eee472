/**
 * Issue 19: the commands one single-event recordUsage sends (command monitoring), and what
 * concurrent ones share: the events, the postings, the audit entries, the POSTED marks and
 * the pending pulls of every request in one event-loop turn go out as one command each.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UsageLedger, POSTINGS } from '../../src/modules/usage/repository.js';
import type { PostingDoc } from '../../src/modules/usage/model.js';
import { requestCommands, startTestInstance, type TestInstance } from '../support/harness.js';
import { defineUsageFeatures, expectLedgerConsistent, key, meteredAccount, recordUsageOk } from '../support/usage-fixtures.js';
import { feedsCaughtUp } from '../support/terms-cache.js';

let one: TestInstance;
beforeAll(async () => {
  // A long staleness bound: the warm count must not depend on the feed's polls keeping up on a busy machine.
  one = await startTestInstance({ env: { TERMS_CACHE_STALENESS_MS: '30000' } });
  await defineUsageFeatures(one);
});
afterAll(async () => {
  await one?.stop();
});

const settle = () => new Promise((resolve) => setTimeout(resolve, 300));

async function commandsOf(accountIds: string[]): Promise<string[]> {
  const before = one.commands.length;
  const receipts = await Promise.all(
    accountIds.map((accountId) => recordUsageOk(one, { accountId, feature: 'api_calls', quantity: '1', idempotencyKey: key() })),
  );
  expect(receipts.every((receipt) => receipt.status === 'ACCEPTED')).toBe(true);
  await settle(); // the pending pulls, off the request path
  return requestCommands(one, before).map((event) => `${event.commandName} ${String(event.command[event.commandName])}`);
}

describe('recordUsage round trips (issue 19)', () => {
  it('sends ten commands for one event alone, eight with the terms and grants caches warm (docs/performance.md lists them in order)', async () => {
    const { accountId } = await meteredAccount(one, { included: '1000' });
    await feedsCaughtUp(one);
    await commandsOf([accountId]);
    // Warm: the account's contracts come from the terms cache, its grants from the grants cache.
    const warm = await commandsOf([accountId]);
    expect(warm).not.toContain('find contracts');
    expect(warm).not.toContain('find grants');
    expect(warm).toHaveLength(8);
    one.services.termsCache.clear();
    one.services.grantsCache.clear();
    // Writes that go out together (postings + events; audit + balance change) may swap places.
    expect((await commandsOf([accountId])).sort()).toEqual(
      [
        'find usage_events', // the retry pre-check (coalesced per turn)
        'find contracts', // a cold terms cache
        'insert usage_postings',
        'insert usage_events',
        'find grants', // a cold grants cache
        'findAndModify usage_counters',
        'insert audit_log',
        'insert balance_changes',
        'update usage_postings',
        'update usage_counters',
      ].sort(),
    );
  });

  it('shares the events, postings, audit, POSTED and pull commands of concurrent requests', async () => {
    const accounts = await Promise.all(Array.from({ length: 20 }, () => meteredAccount(one, { included: '1000' })));
    const ids = accounts.map(({ accountId }) => accountId);
    await commandsOf(ids);
    const commands = await commandsOf(ids);
    const count = (name: string) => commands.filter((command) => command === name).length;
    console.log(`20 concurrent recordUsage: ${commands.length} commands (${(commands.length / 20).toFixed(1)} per event)`);
    // One per turn; the 20 requests' work reaches each step over a few turns, not 20.
    expect(count('insert usage_events')).toBeLessThanOrEqual(5);
    expect(count('insert usage_postings')).toBeLessThanOrEqual(5);
    // These follow each posting's own counter update, whose answers arrive over several turns.
    expect(count('insert audit_log')).toBeLessThanOrEqual(10);
    expect(count('update usage_postings')).toBeLessThanOrEqual(10);
    expect(count('update usage_counters')).toBeLessThanOrEqual(10);
    for (const accountId of ids) await expectLedgerConsistent(one.database.db, accountId);
  });

  it('a shared POSTED bulkWrite tells each posting whether its own fenced mark matched', async () => {
    const { accountId } = await meteredAccount(one, { included: '1000' });
    await recordUsageOk(one, { accountId, feature: 'api_calls', quantity: '1', idempotencyKey: key() });
    const db = one.database.db;
    const postings = db.collection<PostingDoc>(POSTINGS);
    const settled = (await postings.findOne({ accountId }))!;
    const reserved = (id: string): PostingDoc => ({ ...settled, _id: id, state: 'RESERVED', attempt: 1 });
    const [kept, taken, gone] = [reserved(key('kept')), reserved(key('taken')), reserved(key('gone'))];
    await postings.insertMany([kept, taken, gone]);
    await postings.updateOne({ _id: taken._id }, { $inc: { attempt: 1 } }); // taken over meanwhile
    await postings.deleteOne({ _id: gone._id });
    const posted = { ...settled, state: 'POSTED' as const, postedAt: new Date() };
    const fields = {
      state: posted.state,
      appliedAs: posted.appliedAs!,
      before: posted.before!,
      inc: posted.inc!,
      late: posted.late!,
      outcomes: posted.outcomes!,
      postedAt: posted.postedAt,
    };
    const ledger = new UsageLedger(db);
    const answers = await ledger.markPosted([kept, taken, gone].map((posting) => ({ posting, posted: fields })));
    expect(answers).toEqual([true, false, false]);
    expect((await postings.findOne({ _id: taken._id }))!.state).toBe('RESERVED');
    expect((await postings.findOne({ _id: kept._id }))!.state).toBe('POSTED');
  });
});
