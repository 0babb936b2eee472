/**
 * Every write to `grants` (GrantRepository: the insert, the void's compare-and-set and its
 * cut, the announcement bookkeeping) stamps `updatedAt`, bumps `revision`, keeps the
 * document's other fields, and invalidates the account in the instance's grants cache,
 * also when the write failed. Against the real database.
 */
import { MongoClient, type Db } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { createLogger } from '../../src/logger.js';
import { GrantCache } from '../../src/modules/grants/grant-cache.js';
import type { GrantDoc } from '../../src/modules/grants/model.js';
import { GrantRepository } from '../../src/modules/grants/repository.js';
import { uniqueDbName } from '../support/harness.js';

let client: MongoClient;
let db: Db;
let cache: GrantCache;
let repository: GrantRepository;
const logger = createLogger('silent');

beforeAll(async () => {
  client = await MongoClient.connect(inject('mongoUri'));
  db = client.db(uniqueDbName('gci'));
  cache = new GrantCache(db.collection('grants'), logger, { maxEntries: 100, maxStalenessMs: 60_000 });
  await cache.start();
  repository = new GrantRepository(db, cache);
});
afterAll(async () => {
  await cache?.stop();
  await client?.close();
});

let n = 0;
function grant(accountId: string): GrantDoc {
  const now = new Date();
  return {
    _id: `grt_inv_${++n}`,
    accountId,
    feature: 'api_calls',
    kind: 'PROMOTIONAL',
    amount: 1_000_000n,
    priority: 0,
    effectiveAt: now,
    expiresAt: null,
    startCut: null,
    reason: 'test',
    issuedBy: 'tester',
    issuedAt: now,
    requestId: null,
    idempotencyKey: `k${n}`,
    request: { feature: 'api_calls', amount: '1', kind: 'PROMOTIONAL', priority: 0, effectiveAt: null, expiresAt: null, reason: 'test' },
    voidedAt: null,
    voidedBy: null,
    voidReason: null,
    voidRequestId: null,
    voidCut: null,
    announce: ['issued'],
    announceSince: now,
  };
}

/** Reads the account's grants through the cache (the hot path) and reports whether it was held. */
async function warm(accountId: string): Promise<void> {
  await repository.findForPairs([{ accountId, feature: 'api_calls' }], { cached: true });
  const loads: string[][] = [];
  await cache.read([accountId], async (ids) => {
    loads.push([...ids]);
    return [];
  });
  expect(loads, 'held after a read').toEqual([]);
}

async function held(accountId: string): Promise<boolean> {
  let loaded = false;
  await cache.read([accountId], async (ids) => {
    loaded = true;
    return db
      .collection<GrantDoc>('grants')
      .find({ accountId: { $in: [...ids] } })
      .toArray();
  });
  return !loaded;
}

describe('grant writes and the grants cache', () => {
  it('every write stamps the document, keeps its fields and invalidates the account at once', async () => {
    const accountId = 'acct_inv_1';
    const doc = grant(accountId);
    await warm(accountId);
    expect(await repository.insert(doc)).toBe(true);
    expect(await held(accountId)).toBe(false);
    const stored = async () => (await repository.findById(doc._id))!;
    const first = await stored();
    expect(first.updatedAt).toBeInstanceOf(Date);
    expect(first.revision).toBe(0);

    const writes: Array<[string, () => Promise<unknown>]> = [
      ['duplicate insert', () => repository.insert(doc)],
      [
        'void',
        () => repository.markVoided(doc, { voidedAt: new Date(), voidedBy: 'tester', voidReason: 'wrong account', voidRequestId: null }),
      ],
      ['void cut', () => repository.setVoidCut(doc, { at: new Date(), units: 0n })],
      ['announcement cleared', () => repository.clearAnnouncement(doc, 'issued')],
      ['announcement cleared (the other)', () => repository.clearAnnouncement(doc, 'voided')],
    ];
    let revision = 0;
    for (const [name, write] of writes) {
      await warm(accountId);
      await write();
      expect(await held(accountId), name).toBe(false);
      const now = await stored();
      if (name !== 'duplicate insert') revision++;
      expect(now.revision, name).toBe(revision);
      expect(now.reason, name).toBe('test'); // other fields kept
    }
    const last = await stored();
    expect(last).toMatchObject({ voidReason: 'wrong account', voidCut: { at: expect.any(Date) } });
    expect(last.announce).toBeUndefined();
    // The announcer's drop of an empty list: stamped and invalidating too.
    await db.collection<GrantDoc>('grants').updateOne({ _id: doc._id }, { $set: { announce: [] } });
    await warm(accountId);
    await repository.dropEmptyAnnouncement(doc);
    expect(await held(accountId)).toBe(false);
    expect((await stored()).revision).toBe(revision + 1);
  });

  it('a write that failed invalidates too (it may have landed)', async () => {
    const accountId = 'acct_inv_2';
    const closed = await MongoClient.connect(inject('mongoUri'));
    const failing = new GrantRepository(closed.db(db.databaseName), cache);
    await closed.close(true);
    const doc = grant(accountId);
    for (const [name, write] of [
      ['insert', () => failing.insert(doc)],
      ['void', () => failing.markVoided(doc, { voidedAt: new Date(), voidedBy: 't', voidReason: 'r', voidRequestId: null })],
      ['void cut', () => failing.setVoidCut(doc, { at: new Date(), units: 0n })],
      ['announcement', () => failing.clearAnnouncement(doc, 'issued')],
      ['drop announcement', () => failing.dropEmptyAnnouncement(doc)],
    ] as const) {
      await warm(accountId);
      await expect(write(), name).rejects.toThrow();
      expect(await held(accountId), name).toBe(false);
    }
  });
});
