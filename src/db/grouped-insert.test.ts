/**
 * GroupedInsert against the real wire protocol: the inserts of one event-loop turn share
 * commands, a large group is split into concurrent chunks, and each caller learns of its
 * own collisions (by position in its own documents) and nobody else's.
 */
import { MongoClient, type Collection } from 'mongodb';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { GroupedInsert } from './grouped-insert.js';

interface Row {
  _id: string;
  n: number;
}

describe('GroupedInsert', () => {
  let client: MongoClient;
  let rows: Collection<Row>;
  const commands: Array<{ name: string; documents: number }> = [];

  beforeAll(async () => {
    client = await MongoClient.connect(inject('mongoUri'), { monitorCommands: true });
    client.on('commandStarted', (event) => {
      if (event.commandName === 'insert') commands.push({ name: event.commandName, documents: event.command.documents.length });
    });
    rows = client.db(`grouped_${Date.now().toString(36)}`).collection<Row>('rows');
    await rows.insertMany([
      { _id: 'taken-1', n: 0 },
      { _id: 'taken-2', n: 0 },
    ]);
  });
  afterAll(() => client.close());

  it('sends one turn of small inserts as one command', async () => {
    const grouped = new GroupedInsert(rows);
    commands.length = 0;
    const results = await Promise.all([grouped.insert([{ _id: 'a1', n: 1 }]), grouped.insert([{ _id: 'a2', n: 2 }])]);
    expect(results.map((set) => [...set])).toEqual([[], []]);
    expect(commands).toEqual([{ name: 'insert', documents: 2 }]);
  });

  it('splits a large group into chunks and attributes collisions to their callers', async () => {
    const grouped = new GroupedInsert(rows, 3);
    commands.length = 0;
    const first = Array.from({ length: 5 }, (_, i) => ({ _id: i === 3 ? 'taken-1' : `b${i}`, n: i }));
    const second = Array.from({ length: 4 }, (_, i) => ({ _id: i === 0 ? 'taken-2' : i === 2 ? 'b1' : `c${i}`, n: i }));
    const [mine, theirs] = await Promise.all([grouped.insert(first), grouped.insert(second)]);
    // 'b1' is in both: chunks run concurrently, so either caller may be the one that collides.
    const firstLost = mine.has(1);
    expect([...mine].sort()).toEqual(firstLost ? [1, 3] : [3]);
    expect([...theirs].sort()).toEqual(firstLost ? [0] : [0, 2]);
    expect(commands.map((command) => command.documents)).toEqual([3, 3, 3]);
    const stored = await rows.find({ _id: { $in: ['b0', 'b1', 'b2', 'b4', 'c1', 'c3'] } }).toArray();
    expect(stored).toHaveLength(6);
    expect(await rows.countDocuments({ _id: 'b1' })).toBe(1);
  });
});
