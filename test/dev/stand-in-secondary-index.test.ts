/**
 * The stand-in's non-unique indexes (tools/mongo-java-server/PlannedSecondaryIndex.java):
 * which filters they serve (the `plannerStats` command reports the last query's plan),
 * that they follow inserts, updates, deletes and drops, and edge cases where a careless
 * index would answer differently from the stock scan (run beside it, with
 * MONGO_LAUNCHER_STOCK_PLANNER=1). The property test beside this file covers the rest.
 */
import { Double, MongoClient, ObjectId, type Collection, type Db, type Document } from 'mongodb';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startMongoJavaServer, type MongoJavaServer } from '../../src/dev/mongo-java-server.js';
import { createLogger } from '../../src/logger.js';

type Row = Document & { _id: number };

const day = (n: number): Date => new Date(Date.UTC(2026, 0, n));

describe('stand-in non-unique indexes', () => {
  const logger = createLogger('error');
  let servers: MongoJavaServer[] = [];
  let clients: MongoClient[] = [];
  let db: Db;
  let stockDb: Db;
  let rows: Collection<Row>;
  let name = '';
  let run = 0;

  beforeAll(async () => {
    servers = await Promise.all([
      startMongoJavaServer({ logger }),
      startMongoJavaServer({ logger, env: { MONGO_LAUNCHER_STOCK_PLANNER: '1' } }),
    ]);
    clients = await Promise.all(servers.map((server) => MongoClient.connect(server.uri)));
    db = clients[0]!.db('secondary');
    stockDb = clients[1]!.db('secondary');
  });
  afterAll(async () => {
    await Promise.all(clients.map((client) => client.close()));
    await Promise.all(servers.map((server) => server.stop()));
  });
  beforeEach(() => {
    name = `rows_${run++}`;
    rows = db.collection<Row>(name);
  });

  const plan = async (): Promise<string> => (await db.command({ plannerStats: name })).lastPlan as string;
  const entries = async (index: string): Promise<number> => {
    const stats = await db.command({ plannerStats: name });
    return (stats.indexes as { name: string; entries: number }[]).find((entry) => entry.name === index)?.entries ?? -1;
  };
  const ids = async (filter: Document, sort?: Document): Promise<unknown[]> =>
    (await rows.find(filter, { sort }).toArray()).map((row) => row._id);

  async function seedPostings(): Promise<void> {
    await rows.createIndex({ state: 1, leaseUntil: 1 });
    await rows.createIndex({ accountId: 1 });
    await rows.insertMany([
      { _id: 1, state: 'RESERVED', leaseUntil: day(1), accountId: 'acct_a' },
      { _id: 2, state: 'RESERVED', leaseUntil: day(5), accountId: 'acct_b' },
      { _id: 3, state: 'POSTED', leaseUntil: day(1), accountId: 'acct_a' },
      { _id: 4, state: 'RESERVED', accountId: 'acct_c' },
    ]);
  }

  it('serves an equality prefix with a range on the next key, and equality/$in on one key', async () => {
    await seedPostings();
    expect(await ids({ state: 'RESERVED', leaseUntil: { $lt: day(3) } })).toEqual([1]);
    expect(await plan()).toBe('state_1_leaseUntil_1');
    expect(await ids({ state: { $in: ['RESERVED', 'POSTED'] }, leaseUntil: { $gte: day(1), $lte: day(5) } })).toEqual([1, 2, 3]);
    expect(await plan()).toBe('state_1_leaseUntil_1');
    expect(await ids({ accountId: { $in: ['acct_a', 'acct_c'] }, state: 'RESERVED' })).toEqual([1, 4]);
    expect(await plan()).toBe('state_1_leaseUntil_1'); // equal reach (one key each): the first
    expect(await ids({ accountId: 'acct_a', state: { $ne: 'POSTED' } })).toEqual([1]);
    expect(await plan()).toBe('accountId_1');
    expect(await ids({ state: 'RESERVED', leaseUntil: null })).toEqual([4]);
    expect(await plan()).toBe('state_1_leaseUntil_1');
  });

  it('prefers a unique index, then the index constraining the most keys', async () => {
    await seedPostings();
    await rows.createIndex({ state: 1 });
    expect(await ids({ _id: 2, state: 'RESERVED' })).toEqual([2]);
    expect(await plan()).toBe('_id_');
    expect(await ids({ state: 'RESERVED', leaseUntil: day(5) })).toEqual([2]);
    expect(await plan()).toBe('state_1_leaseUntil_1');
  });

  it('falls back to a scan for filters it cannot serve, with the same answers', async () => {
    await seedPostings();
    const unserved: Document[] = [
      { leaseUntil: { $lt: day(3) } }, // not a prefix
      { state: { $ne: 'POSTED' } },
      { state: { $exists: true } },
      { $or: [{ state: 'POSTED' }, { accountId: 'acct_c' }] },
      { state: { $regex: '^RES' } },
      { state: { $gt: 'A', $lt: 5 } }, // bounds of two types
      { accountId: { $in: [] } },
    ];
    for (const filter of unserved) {
      expect(await ids(filter), JSON.stringify(filter)).toEqual(await stockIds(filter));
      expect(await plan(), JSON.stringify(filter)).toBe('COLLSCAN');
    }
  });

  it('follows inserts, key-changing and in-place updates, deletes and drops', async () => {
    await seedPostings();
    expect(await entries('accountId_1')).toBe(4);
    await rows.updateOne({ _id: 1 }, { $set: { accountId: 'acct_z' } });
    expect(await ids({ accountId: 'acct_a' })).toEqual([3]);
    expect(await ids({ accountId: 'acct_z' })).toEqual([1]);
    await rows.updateOne({ _id: 3 }, { $set: { note: 'kept' } });
    expect(await ids({ accountId: 'acct_a' })).toEqual([3]);
    await rows.deleteOne({ _id: 1 });
    expect(await ids({ accountId: 'acct_z' })).toEqual([]);
    expect(await entries('accountId_1')).toBe(3);
    await rows.insertOne({ _id: 9, accountId: 'acct_z' }); // reuses the freed position
    expect(await ids({ accountId: 'acct_z' })).toEqual([9]);
    await rows.replaceOne({ _id: 9 }, { accountId: 'acct_y' });
    expect(await ids({ accountId: { $in: ['acct_z', 'acct_y'] } })).toEqual([9]);
    await rows.dropIndex('accountId_1');
    expect(await ids({ accountId: 'acct_y' })).toEqual([9]);
    expect(await plan()).toBe('COLLSCAN');
    await rows.createIndex({ accountId: 1 }); // built over the documents already there
    expect(await entries('accountId_1')).toBe(4);
    expect(await ids({ accountId: 'acct_y' })).toEqual([9]);
  });

  it('keeps arrays, embedded documents, null and missing fields correct', async () => {
    await rows.createIndex({ tags: 1 });
    await rows.createIndex({ 'meta.region': -1, tags: 1 });
    await rows.insertMany([
      { _id: 1, tags: ['eu', 'us'], meta: { region: 'eu' } },
      { _id: 2, tags: 'eu', meta: [{ region: 'eu' }] },
      { _id: 3, tags: null, meta: 'flat' },
      { _id: 4, meta: { region: null } },
      { _id: 5, tags: { eu: 1 }, meta: {} },
      { _id: 6, tags: [], meta: { region: ['us', 'eu'] } },
    ]);
    expect(await ids({ tags: 'eu' })).toEqual([1, 2]);
    expect(await plan()).toBe('tags_1');
    expect(await ids({ tags: null })).toEqual(await stockIds({ tags: null }));
    expect(await ids({ tags: { $size: 0 } })).toEqual([6]);
    expect(await ids({ tags: { $gte: 'f' } })).toEqual([1]);
    expect(await plan()).toBe('tags_1');
    expect(await ids({ 'meta.region': 'eu' })).toEqual([1, 2, 6]);
    expect(await plan()).toBe('meta.region_-1_tags_1');
    expect(await ids({ 'meta.region': null })).toEqual(await stockIds({ 'meta.region': null }));
    expect(await ids({ 'meta.region': { $in: ['us', null] }, tags: 'eu' })).toEqual(
      await stockIds({ 'meta.region': { $in: ['us', null] }, tags: 'eu' }),
    );
    expect(await plan()).toBe('meta.region_-1_tags_1');
  });

  it('matches the stock comparisons of numbers of mixed types, large integral values and ObjectIds', async () => {
    await rows.createIndex({ n: 1 });
    const [oid1, oid2] = ['65a000000000000000000001', '65a000000000000000000002'].map((hex) => new ObjectId(hex));
    const values = [1, new Double(1), 1.5, -0, new Double(-0), 3_000_000_000, 3_000_000_000.5, Number.NaN, 'x', day(1), oid1, oid2];
    const docs = values.map((n, i) => ({ _id: i, n }));
    await rows.insertMany(docs);
    await stockDb.collection<Row>(name).insertMany(docs);
    const filters: Document[] = [
      { n: 1 },
      { n: 0 },
      { n: { $in: [0, 1.5] } },
      { n: { $gte: 3_000_000_000.5 } },
      { n: { $lte: 3_000_000_000 } },
      { n: { $gt: 2_999_999_999.5 } },
      { n: { $lt: 3_000_000_000.25 } },
      { n: { $gt: 0, $lt: 2 } },
      { n: { $gte: 'a' } },
      { n: { $lt: day(2) } },
      { n: Number.NaN },
      { n: { $gt: oid1 } },
      { n: { $lte: oid1 } },
      { n: { $in: [oid2, 'x'] } },
    ];
    for (const filter of filters) expect(await ids(filter), JSON.stringify(filter)).toEqual(await stockIds(filter));
  });

  it('answers in natural order, sorted or limited, as a scan does', async () => {
    await rows.createIndex({ k: 1 });
    await rows.insertMany([3, 1, 2, 5, 4].map((id) => ({ _id: id, k: id % 2 })));
    await rows.deleteOne({ _id: 1 });
    await rows.insertOne({ _id: 6, k: 1 }); // takes _id 1's position
    expect(await ids({ k: 1 })).toEqual([3, 6, 5]);
    expect(await ids({ k: 1 }, { $natural: -1 })).toEqual([5, 6, 3]);
    expect(await ids({ k: { $in: [0, 1] } }, { k: -1 })).toEqual([3, 6, 5, 2, 4]);
    expect((await rows.find({ k: 1 }).limit(2).toArray()).map((row) => row._id)).toEqual([3, 6]);
    expect(await rows.countDocuments({ k: 0 })).toBe(2);
  });

  async function stockIds(filter: Document): Promise<unknown[]> {
    const stock = stockDb.collection<Row>(name);
    if ((await stock.estimatedDocumentCount()) === 0) {
      await stock.insertMany(await rows.find({}).toArray());
    }
    return (await stock.find(filter).toArray()).map((row) => row._id);
  }
});
