/**
 * The stand-in's non-unique indexes (tools/mongo-java-server/PlannedSecondaryIndex.java)
 * may change what a query costs, never what it answers. Random documents (missing fields,
 * nulls, arrays, embedded documents, dates, ints, longs and doubles, -0, NaN, strings,
 * ObjectIds, booleans), random indexes (single and compound, ascending and descending, one unique),
 * and random inserts, updates, deletes and queries run against two stand-ins side by
 * side: the planned one and one started with MONGO_LAUNCHER_STOCK_PLANNER=1, which scans.
 * Every answer must be the same, in the same order: the planner hands the matcher its
 * candidates in the order a scan meets them, so order differs only where the stock
 * planner itself uses its unique index (a filter on `u` alone), and there the answers are
 * compared as sets.
 */
import fc from 'fast-check';
import { Double, Long, MongoClient, ObjectId, type Db, type Document } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMongoJavaServer, type MongoJavaServer } from '../../src/dev/mongo-java-server.js';
import { createLogger } from '../../src/logger.js';

const FIELDS = ['a', 'b', 'c', 'n.x'] as const;
type Field = (typeof FIELDS)[number];

const OBJECT_IDS = ['65a000000000000000000001', '65a000000000000000000002'].map((hex) => new ObjectId(hex));

// A small domain, so that documents and filters meet often.
const scalarArb: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: fc.integer({ min: -1, max: 1 }) },
  { weight: 1, arbitrary: fc.constantFrom(0.5, 1e300, Number.NaN, 3_000_000_000, 3_000_000_000.5) },
  { weight: 2, arbitrary: fc.integer({ min: -1, max: 1 }).map((n) => new Double(n)) },
  { weight: 1, arbitrary: fc.integer({ min: -1, max: 1 }).map((n) => Long.fromNumber(n)) },
  { weight: 1, arbitrary: fc.constant(new Double(-0)) },
  { weight: 3, arbitrary: fc.constantFrom('a', 'ab') },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 1 }).map((day) => new Date(Date.UTC(2026, 0, 1 + day))) },
  { weight: 1, arbitrary: fc.constantFrom(...OBJECT_IDS) },
  { weight: 1, arbitrary: fc.boolean() },
  { weight: 2, arbitrary: fc.constant(null) },
);
const valueArb: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 6, arbitrary: scalarArb },
  { weight: 2, arbitrary: fc.array(scalarArb, { maxLength: 2 }) },
  { weight: 1, arbitrary: scalarArb.map((x) => ({ x })) },
);
const nestedArb: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ x: valueArb }, { requiredKeys: [] }) },
  { weight: 1, arbitrary: scalarArb },
  { weight: 1, arbitrary: fc.array(fc.record({ x: scalarArb }), { maxLength: 2 }) },
);
const docArb = fc.record({ a: valueArb, b: valueArb, c: valueArb, n: nestedArb, u: fc.boolean() }, { requiredKeys: ['u'] });

const conditionArb: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: scalarArb },
  { weight: 2, arbitrary: scalarArb.map((v) => ({ $eq: v })) },
  { weight: 3, arbitrary: fc.array(scalarArb, { minLength: 1, maxLength: 3 }).map((vs) => ({ $in: vs })) },
  {
    weight: 4,
    arbitrary: fc
      .uniqueArray(fc.tuple(fc.constantFrom('$gt', '$gte', '$lt', '$lte'), scalarArb), {
        minLength: 1,
        maxLength: 2,
        selector: ([op]) => op,
      })
      .map((ops) => Object.fromEntries(ops)),
  },
  { weight: 1, arbitrary: scalarArb.map((v) => ({ $ne: v })) },
  { weight: 1, arbitrary: fc.boolean().map((exists) => ({ $exists: exists })) },
  { weight: 1, arbitrary: fc.array(scalarArb, { maxLength: 2 }) },
  { weight: 1, arbitrary: fc.constant({ $regex: 'a' }) },
  { weight: 1, arbitrary: fc.constant({}) },
);
const filterArb: fc.Arbitrary<Document> = fc
  .tuple(
    fc.record({ a: conditionArb, b: conditionArb, c: conditionArb, 'n.x': conditionArb }, { requiredKeys: [] }),
    fc.option(fc.integer({ min: 0, max: 40 }), { freq: 5 }),
    fc.option(fc.tuple(scalarArb, scalarArb), { freq: 6 }),
  )
  .map(([fields, u, or]) => {
    const filter: Document = { ...fields };
    if (u !== null) filter.u = u;
    if (or) filter.$or = [{ a: or[0] }, { b: or[1] }];
    return filter;
  });

type Op =
  | { kind: 'insert'; doc: Document }
  | { kind: 'update'; filter: Document; field: Field; value: unknown; unset: boolean }
  | { kind: 'delete'; filter: Document }
  | { kind: 'find'; filter: Document; sort: Document | null; limit: number }
  | { kind: 'count'; filter: Document };

const fieldArb = fc.constantFrom(...FIELDS);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: docArb.map((doc) => ({ kind: 'insert' as const, doc })) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('update' as const),
      filter: filterArb,
      field: fieldArb,
      value: valueArb,
      unset: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('delete' as const), filter: filterArb }) },
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('find' as const),
      filter: filterArb,
      sort: fc.option(fc.tuple(fc.constantFrom('a', 'b', 'n.x', '$natural'), fc.constantFrom(1, -1)).map(([f, d]) => ({ [f]: d }))),
      limit: fc.constantFrom(0, 0, 1, 2),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('count' as const), filter: filterArb }) },
);

const INDEXES: Document[] = [{ a: 1 }, { b: -1 }, { a: 1, b: 1 }, { b: 1, a: -1, c: 1 }, { 'n.x': 1 }, { c: -1, 'n.x': 1 }];
const indexesArb = fc.subarray(INDEXES, { minLength: 1, maxLength: 3 });
const caseArb = fc.record({
  indexes: indexesArb,
  unique: fc.boolean(),
  seed: fc.array(docArb, { maxLength: 12 }),
  ops: fc.array(opArb, { minLength: 4, maxLength: 16 }),
});

/** An operation's outcome, comparable across servers: ids in answer order, or the error. */
async function apply(db: Db, collection: string, op: Op, nextId: number): Promise<unknown> {
  const rows = db.collection(collection);
  try {
    switch (op.kind) {
      case 'insert': {
        const { u, ...fields } = op.doc as Document & { u: boolean };
        await rows.insertOne({ _id: nextId as never, ...fields, ...(u ? { u: nextId } : {}) });
        return 'inserted';
      }
      case 'update': {
        const change = op.unset ? { $unset: { [op.field]: '' } } : { $set: { [op.field]: op.value } };
        const result = await rows.updateMany(op.filter, change);
        return [result.matchedCount, result.modifiedCount];
      }
      case 'delete':
        return (await rows.deleteMany(op.filter)).deletedCount;
      case 'count':
        return await rows.countDocuments(op.filter);
      case 'find': {
        let cursor = rows.find(op.filter, { projection: { _id: 1 } });
        if (op.sort) cursor = cursor.sort(op.sort);
        if (op.limit) cursor = cursor.limit(op.limit);
        return (await cursor.toArray()).map((row) => row._id as unknown as number);
      }
    }
  } catch (error) {
    return { error: (error as Error).message };
  }
}

/** Whether the stock planner answers this find from its unique index (its order then differs). */
function stockUsesUniqueIndex(op: Op): boolean {
  return op.kind === 'find' && Object.keys(op.filter).join() === 'u';
}

describe('stand-in non-unique indexes answer as a scan does', () => {
  const logger = createLogger('error');
  let planned: MongoJavaServer;
  let stock: MongoJavaServer;
  let plannedClient: MongoClient;
  let stockClient: MongoClient;

  beforeAll(async () => {
    [planned, stock] = await Promise.all([
      startMongoJavaServer({ logger }),
      startMongoJavaServer({ logger, env: { MONGO_LAUNCHER_STOCK_PLANNER: '1' } }),
    ]);
    [plannedClient, stockClient] = await Promise.all([MongoClient.connect(planned.uri), MongoClient.connect(stock.uri)]);
  });
  afterAll(async () => {
    await Promise.all([plannedClient?.close(), stockClient?.close()]);
    await Promise.all([planned?.stop(), stock?.stop()]);
  });

  it('every find, count, update and delete matches the stock scan', async () => {
    let run = 0;
    let served = 0;
    await fc.assert(
      fc.asyncProperty(caseArb, async ({ indexes, unique, seed, ops }) => {
        const collection = `rows_${run++}`;
        const dbs = [plannedClient.db('property'), stockClient.db('property')] as const;
        for (const db of dbs) {
          for (const keys of indexes) await db.collection(collection).createIndex(keys);
          if (unique) await db.collection(collection).createIndex({ u: 1 }, { unique: true, sparse: true });
        }
        let nextId = 0;
        const all: Op[] = [...seed.map((doc) => ({ kind: 'insert' as const, doc })), ...ops];
        for (const op of all) {
          const id = nextId++;
          const [mine, theirs] = await Promise.all(dbs.map((db) => apply(db, collection, op, id)));
          if (stockUsesUniqueIndex(op) && Array.isArray(mine) && Array.isArray(theirs)) {
            const limit = (op as { limit: number }).limit;
            if (limit === 0) expect([...mine].sort()).toEqual([...theirs].sort());
            else expect(mine.length).toBe(theirs.length);
          } else {
            expect(mine, JSON.stringify(op)).toEqual(theirs);
          }
          if (op.kind === 'find') {
            const stats = await dbs[0].command({ plannerStats: collection });
            if (stats.lastPlan !== 'COLLSCAN' && stats.lastPlan !== '_id_') served++;
          }
        }
        await Promise.all(dbs.map((db) => db.collection(collection).drop()));
      }),
      { numRuns: 60 },
    );
    // The property must exercise the indexes, not only the scan it falls back to.
    expect(served).toBeGreaterThan(20);
  });
});
