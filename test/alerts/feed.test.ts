/**
 * The insert feed both ways an instance can follow it: a change stream (with recovery
 * from a broken stream) and polling (servers without change streams), including a write
 * that commits after later ones were already seen.
 */
import { randomUUID } from 'node:crypto';
import type { Collection } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InsertFeed, isChangeStreamUnsupported } from '../../src/modules/alerts/feed.js';
import { createLogger } from '../../src/logger.js';
import { startTestInstance, type TestInstance } from '../support/harness.js';
import { settle, waitFor } from './live-client.js';

interface Row {
  _id: string;
  at: Date;
  n: number;
}

let instance: TestInstance;
const feeds: Array<InsertFeed<Row>> = [];
beforeAll(async () => {
  instance = await startTestInstance();
});
afterAll(async () => {
  await Promise.all(feeds.map((feed) => feed.stop()));
  await instance?.stop();
});

function follow(mode: 'auto' | 'polling', options: { overlapMs?: number } = {}) {
  const collection = instance.database.db.collection<Row>(`feed_${randomUUID().slice(0, 8)}`);
  const delivered: Row[] = [];
  const feed = new InsertFeed<Row>({
    name: collection.collectionName,
    collection,
    timeField: 'at',
    parse: (doc) => doc as Row,
    timeOf: (row) => row.at,
    deliver: (rows) => delivered.push(...rows),
    orderBatch: (rows) => [...rows].sort((x, y) => x.n - y.n),
    logger: createLogger('silent'),
    mode,
    pollIntervalMs: 50,
    overlapMs: options.overlapMs ?? 2_000,
  });
  feeds.push(feed);
  return { collection, delivered, feed };
}

const row = (n: number, at = new Date()): Row => ({ _id: `r${n}`, at, n });

describe('change-stream feed', () => {
  it('delivers every insert once, in commit order', async () => {
    const { collection, delivered, feed } = follow('auto');
    await feed.start();
    expect(feed.mode).toBe('change-stream');
    for (let n = 1; n <= 20; n++) await collection.insertOne(row(n));
    await waitFor(() => delivered.length >= 20, 10_000, '20 rows');
    await settle(100);
    expect(delivered.map((r) => r.n)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  });

  it('loses and repeats nothing when the stream breaks and is reopened', async () => {
    const { collection, delivered, feed } = follow('auto');
    await feed.start();
    await collection.insertOne(row(1));
    await waitFor(() => delivered.length === 1, 10_000, 'first row');
    // Break the open stream (white box): the feed reopens it after its resume token.
    await (feed as any).stream.close();
    for (let n = 2; n <= 6; n++) await collection.insertOne(row(n));
    await waitFor(() => delivered.length >= 6, 5_000, 'rows written while the stream was down');
    await settle(200);
    expect(delivered.map((r) => r.n)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('catches up on writes made while a stream that had no resume token yet was down', async () => {
    const { collection, delivered, feed } = follow('auto');
    await feed.start();
    await (feed as any).stream.close();
    for (let n = 1; n <= 3; n++) await collection.insertOne(row(n));
    await waitFor(() => delivered.length >= 3, 5_000, 'rows written before the stream came back');
    await collection.insertOne(row(4));
    await waitFor(() => delivered.length >= 4, 10_000, 'a row after it came back');
    await settle(200);
    expect(delivered.map((r) => r.n)).toEqual([1, 2, 3, 4]);
  });
});

describe('polling feed', () => {
  it('delivers every insert once', async () => {
    const { collection, delivered, feed } = follow('polling');
    await collection.insertOne(row(0)); // existing before start: not delivered
    await feed.start();
    expect(feed.mode).toBe('polling');
    for (let n = 1; n <= 10; n++) await collection.insertOne(row(n));
    await waitFor(() => delivered.length >= 10, 10_000, '10 rows');
    await settle(200); // several more polls over the same window
    expect(delivered.map((r) => r.n)).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
  });

  it('finds a write that commits after later writes were already seen', async () => {
    const { collection, delivered, feed } = follow('polling');
    await feed.start();
    const stampedEarly = new Date();
    await collection.insertOne(row(2));
    await waitFor(() => delivered.length === 1, 10_000, 'the later write');
    // Stamped before row 2 but committed only now, a few polls later.
    await settle(300);
    await collection.insertOne(row(1, stampedEarly));
    await waitFor(() => delivered.length === 2, 10_000, 'the late write');
    await settle(200);
    expect(delivered.map((r) => r.n)).toEqual([2, 1]);
  });

  it('orders what one poll finds with the feed order', async () => {
    const { collection, delivered, feed } = follow('polling');
    await feed.start();
    await collection.insertMany([row(3), row(1), row(2)]);
    await waitFor(() => delivered.length === 3, 10_000, 'three rows');
    expect(delivered.map((r) => r.n)).toEqual([1, 2, 3]);
  });

  it('delivers a row once when this instance also handed it over directly', async () => {
    const { collection, delivered, feed } = follow('polling');
    await feed.start();
    const direct = row(7);
    await collection.insertOne(direct);
    feed.deliverDirect([direct]);
    await settle(300);
    expect(delivered.map((r) => r.n)).toEqual([7]);
  });

  it('reads in full only rows it has not seen: polls over seen rows ask for ids alone', async () => {
    const { collection, delivered, feed } = follow('polling');
    await feed.start();
    await collection.insertMany(Array.from({ length: 20 }, (_, i) => row(i + 1)));
    await waitFor(() => delivered.length === 20, 10_000, '20 rows');
    const from = instance.commands.length;
    await settle(300); // several polls, every row still inside the overlap window
    await collection.insertOne(row(21));
    await waitFor(() => delivered.length === 21, 10_000, 'the 21st row');
    const finds = instance.commands
      .slice(from)
      .filter((event) => event.commandName === 'find' && event.command.find === collection.collectionName);
    const idsOnly = finds.filter((event) => JSON.stringify(event.command.projection) === JSON.stringify({ _id: 1 }));
    const full = finds.filter((event) => event.command.projection === undefined);
    expect(idsOnly.length).toBeGreaterThanOrEqual(3);
    // One full read, for the one new row, by id.
    expect(full).toHaveLength(1);
    expect(full[0]!.command.filter).toEqual({ _id: { $in: ['r21'] } });
    expect(delivered.map((r) => r.n)).toEqual(Array.from({ length: 21 }, (_, i) => i + 1));
  });

  it('stops polling when stopped', async () => {
    const { collection, delivered, feed } = follow('polling');
    await feed.start();
    await feed.stop();
    await (collection as Collection<Row>).insertOne(row(1));
    await settle(200);
    expect(delivered).toEqual([]);
  });
});

describe('change stream support detection', () => {
  it('recognises a standalone server refusing $changeStream', () => {
    expect(isChangeStreamUnsupported({ code: 40573, message: 'The $changeStream stage is only supported on replica sets' })).toBe(true);
    expect(isChangeStreamUnsupported({ code: 286, message: 'Resume of change stream was not possible' })).toBe(false);
    expect(isChangeStreamUnsupported(new Error('connection reset'))).toBe(false);
  });
});
