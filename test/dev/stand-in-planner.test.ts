/**
 * The stand-in's planner fix (tools/mongo-java-server/PlannedMemoryBackend.java) finds
 * candidates through a unique index when a filter has more fields than the index's keys.
 * It must change only the cost, never the answer: every filter below is answered as
 * MongoDB answers it, whether the extra fields match or not.
 */
import { MongoClient, type Collection } from 'mongodb';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { uniqueDbName } from '../support/harness.js';

interface Row {
  _id: string;
  state: string;
  attempt: number;
  email?: string;
  tags?: string[];
}

describe('stand-in query planning over unique indexes', () => {
  let client: MongoClient;
  let rows: Collection<Row>;

  beforeAll(async () => {
    client = await MongoClient.connect(inject('mongoUri'));
    rows = client.db(uniqueDbName('planner')).collection<Row>('rows');
    await rows.createIndex({ email: 1 }, { unique: true, sparse: true });
    await rows.insertMany([
      { _id: 'a', state: 'RESERVED', attempt: 1, email: 'a@x.test', tags: ['eu'] },
      { _id: 'b', state: 'POSTED', attempt: 2, email: 'b@x.test' },
      { _id: 'c', state: 'RESERVED', attempt: 2 },
    ]);
  });
  afterAll(() => client.close());

  const ids = async (filter: object): Promise<string[]> => (await rows.find(filter).toArray()).map((row) => row._id).sort();

  it('answers _id plus other fields exactly, matching or not', async () => {
    expect(await ids({ _id: 'a', state: 'RESERVED' })).toEqual(['a']);
    expect(await ids({ _id: 'a', state: 'POSTED' })).toEqual([]);
    expect(await ids({ _id: 'c', attempt: { $gte: 2 }, state: 'RESERVED' })).toEqual(['c']);
    expect(await ids({ _id: 'c', attempt: { $lt: 2 } })).toEqual([]);
    expect(await ids({ _id: 'a', tags: 'eu' })).toEqual(['a']);
    expect(await ids({ _id: 'missing', state: 'RESERVED' })).toEqual([]);
  });

  it('answers $in on _id plus other fields', async () => {
    expect(await ids({ _id: { $in: ['a', 'b', 'c'] }, state: 'RESERVED' })).toEqual(['a', 'c']);
    expect(await ids({ _id: { $in: ['b'] }, state: 'RESERVED' })).toEqual([]);
  });

  it('keeps operators the index cannot serve, and filters without its keys, correct', async () => {
    expect(await ids({ _id: { $gt: 'a' }, state: 'RESERVED' })).toEqual(['c']);
    expect(await ids({ state: 'RESERVED', attempt: 2 })).toEqual(['c']);
    expect(await ids({ _id: 'b', $or: [{ state: 'POSTED' }, { attempt: 9 }] })).toEqual(['b']);
  });

  it('uses a secondary unique index the same way, sparse included', async () => {
    expect(await ids({ email: 'b@x.test', attempt: 2 })).toEqual(['b']);
    expect(await ids({ email: 'b@x.test', attempt: 1 })).toEqual([]);
    expect(await ids({ email: null, state: 'RESERVED' })).toEqual(['c']);
  });

  it('applies guarded updates only where the whole filter matches', async () => {
    const missed = await rows.updateOne({ _id: 'a', state: 'POSTED' }, { $set: { state: 'X' } });
    expect(missed.matchedCount).toBe(0);
    const hit = await rows.findOneAndUpdate({ _id: 'a', attempt: { $lte: 1 } }, { $inc: { attempt: 1 } }, { returnDocument: 'after' });
    expect(hit?.attempt).toBe(2);
    const deleted = await rows.deleteOne({ _id: 'b', state: 'RESERVED' });
    expect(deleted.deletedCount).toBe(0);
    expect(await rows.countDocuments()).toBe(3);
  });
});
