/**
 * StampedFeedCache on its own, against the real database (one implementation behind both
 * the contracts' terms cache and the grants cache): a failing feed makes reads go through
 * once the bound has passed, a read that raced an invalidation does not store its result,
 * the LRU bound holds, and the feed finds another writer's stamp. The contracts' cache is
 * the subject (ContractTermsCache is a StampedFeedCache keyed by account); the last test
 * runs the grants' shape (GrantCache) through the feed too.
 */
import { MongoClient, type Collection } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { createLogger } from '../../src/logger.js';
import type { ContractDoc } from '../../src/modules/contracts/model.js';
import { ContractTermsCache } from '../../src/modules/contracts/terms-cache.js';
import { GrantCache } from '../../src/modules/grants/grant-cache.js';
import type { GrantDoc } from '../../src/modules/grants/model.js';
import { insertContracts } from '../support/seed.js';
import { uniqueDbName } from '../support/harness.js';
import { sleep } from '../support/terms-cache.js';

const BOUND = 200;
let client: MongoClient;
let contracts: Collection<ContractDoc>;
const logger = createLogger('silent');

beforeAll(async () => {
  client = await MongoClient.connect(inject('mongoUri'));
  contracts = client.db(uniqueDbName('tc')).collection<ContractDoc>('contracts');
  await insertContracts(client.db(contracts.dbName), [
    { _id: 'ctr_1', accountId: 'acct_1' },
    { _id: 'ctr_2', accountId: 'acct_2' },
    { _id: 'ctr_3', accountId: 'acct_3' },
  ]);
});
afterAll(async () => {
  await client?.close();
});

/** A loader that counts the accounts it was asked for. */
function counting(collection = contracts) {
  const asked: string[][] = [];
  const load = async (ids: readonly string[]) => {
    asked.push([...ids]);
    return collection.find({ accountId: { $in: [...ids] } }).toArray();
  };
  return { asked, load };
}

describe('StampedFeedCache', () => {
  it('serves entries while the feed is healthy, and reads through once a failing feed is older than the bound', async () => {
    const feedClient = await MongoClient.connect(inject('mongoUri'));
    const cache = new ContractTermsCache(feedClient.db(contracts.dbName).collection('contracts'), logger, {
      maxEntries: 100,
      maxStalenessMs: BOUND,
    });
    await cache.start();
    try {
      const { asked, load } = counting();
      expect((await cache.read(['acct_1'], load)).map((doc) => doc._id)).toEqual(['ctr_1']);
      expect((await cache.read(['acct_1'], load)).map((doc) => doc._id)).toEqual(['ctr_1']);
      expect(asked).toEqual([['acct_1']]);
      // The feed's client goes away: every poll fails from now on.
      await feedClient.close(true);
      await expect(cache.pollOnce()).rejects.toThrow();
      await sleep(BOUND + 50);
      expect(cache.healthy()).toBe(false);
      await cache.read(['acct_1'], load);
      await cache.read(['acct_1'], load);
      expect(asked).toHaveLength(3);
    } finally {
      await cache.stop();
      await feedClient.close(true).catch(() => undefined);
    }
  });

  it('does not store a read that an invalidation overtook', async () => {
    const cache = new ContractTermsCache(contracts, logger, { maxEntries: 100, maxStalenessMs: 60_000 });
    await cache.start();
    try {
      const { asked, load } = counting();
      let release!: () => void;
      const gate = new Promise<void>((resolve) => {
        release = resolve;
      });
      const slow = cache.read(['acct_2'], async (ids) => {
        const docs = await load(ids);
        await gate; // the write lands and is announced while this read's answer is in flight
        return docs;
      });
      await sleep(20);
      cache.invalidate(['acct_2']);
      release();
      await slow;
      await cache.read(['acct_2'], load);
      expect(asked).toHaveLength(2); // the slow read's result was not kept
      await cache.read(['acct_2'], load);
      expect(asked).toHaveLength(2); // the read after the invalidation was
    } finally {
      await cache.stop();
    }
  });

  it('keeps at most maxEntries accounts', async () => {
    const cache = new ContractTermsCache(contracts, logger, { maxEntries: 2, maxStalenessMs: 60_000 });
    await cache.start();
    try {
      const { asked, load } = counting();
      await cache.read(['acct_1', 'acct_2', 'acct_3'], load);
      expect(cache.size).toBe(2);
      await cache.read(['acct_3'], load); // among the two most recent
      expect(asked).toHaveLength(1);
    } finally {
      await cache.stop();
    }
  });

  it("invalidates on another writer's stamp found by a poll", async () => {
    const cache = new ContractTermsCache(contracts, logger, { maxEntries: 100, maxStalenessMs: 60_000 });
    await cache.start();
    try {
      const { asked, load } = counting();
      await cache.read(['acct_3'], load);
      await cache.pollOnce();
      await cache.read(['acct_3'], load);
      expect(asked).toHaveLength(1); // a poll that finds nothing new keeps the entry
      await contracts.updateOne({ _id: 'ctr_3' }, { $set: { planKey: 'other', updatedAt: new Date() }, $inc: { revision: 1 } });
      await cache.pollOnce();
      expect((await cache.read(['acct_3'], load))[0]).toMatchObject({ planKey: 'other' });
      expect(asked).toHaveLength(2);
    } finally {
      await cache.stop();
    }
  });

  it('keeps an entry that already holds the version a poll finds first (read after the write)', async () => {
    const cache = new ContractTermsCache(contracts, logger, { maxEntries: 100, maxStalenessMs: 60_000 });
    await cache.start();
    try {
      const { asked, load } = counting();
      await contracts.updateOne({ _id: 'ctr_2' }, { $set: { planKey: 'fresh', updatedAt: new Date() }, $inc: { revision: 1 } });
      // Read before any poll saw the write: the entry holds the new version already.
      expect((await cache.read(['acct_2'], load))[0]).toMatchObject({ planKey: 'fresh' });
      await cache.pollOnce();
      await cache.read(['acct_2'], load);
      expect(asked).toHaveLength(1);
      // A later version still invalidates it.
      await contracts.updateOne({ _id: 'ctr_2' }, { $set: { planKey: 'later', updatedAt: new Date() }, $inc: { revision: 1 } });
      await cache.pollOnce();
      expect((await cache.read(['acct_2'], load))[0]).toMatchObject({ planKey: 'later' });
      expect(asked).toHaveLength(2);
    } finally {
      await cache.stop();
    }
  });

  it('grants: keyed by account, sorted by issue, invalidated by a stamp another writer left', async () => {
    const grants = client.db(contracts.dbName).collection<GrantDoc>('grants');
    const at = (minute: number) => new Date(Date.UTC(2026, 0, 1, 0, minute));
    const grant = (id: string, issuedAt: Date, extra: Partial<GrantDoc> = {}) =>
      ({ _id: id, accountId: 'acct_g', feature: 'api', issuedAt, updatedAt: new Date(), revision: 0, ...extra }) as GrantDoc;
    await grants.insertMany([grant('grt_b', at(2)), grant('grt_a', at(1))]);
    const cache = new GrantCache(grants, logger, { maxEntries: 100, maxStalenessMs: 60_000 });
    await cache.start();
    try {
      const { asked, load } = counting(grants as unknown as Collection<ContractDoc>);
      const read = async () => (await cache.read(['acct_g'], load as never)).map((doc) => doc._id);
      expect(await read()).toEqual(['grt_a', 'grt_b']);
      await cache.pollOnce();
      expect(await read()).toEqual(['grt_a', 'grt_b']);
      expect(asked).toHaveLength(1);
      // Two updates of one grant: each bumps the revision, so even one within the same ms is news.
      await grants.updateOne({ _id: 'grt_a' }, { $set: { reason: 'x', updatedAt: new Date() }, $inc: { revision: 1 } });
      await cache.pollOnce();
      expect(await read()).toEqual(['grt_a', 'grt_b']);
      expect(asked).toHaveLength(2);
      await grants.insertOne(grant('grt_c', at(0)));
      await cache.pollOnce();
      expect(await read()).toEqual(['grt_c', 'grt_a', 'grt_b']);
      expect(asked).toHaveLength(3);
    } finally {
      await cache.stop();
    }
  });
});
