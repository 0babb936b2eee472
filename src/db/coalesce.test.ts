import { describe, expect, it } from 'vitest';
import { coalescedReader, loadAll } from './coalesce.js';

/** A stand-in for a collection: records each query's keys, answers from `values`. */
function fakeStore(values: Map<string, number>) {
  const queries: string[][] = [];
  const reader = coalescedReader<string, number>(async (keys) => {
    queries.push([...keys]);
    return keys.map((key) => values.get(key) ?? 0);
  });
  return { queries, reader };
}

/** Resolves after `depth` microtask hops, as a request part-way through its pipeline would. */
async function after(depth: number): Promise<void> {
  for (let i = 0; i < depth; i++) await Promise.resolve();
}

describe('coalescedReader', () => {
  it('answers reads asked for by separate callbacks of one event-loop turn with one query', async () => {
    const { queries, reader } = fakeStore(
      new Map([
        ['a', 1],
        ['b', 2],
        ['c', 3],
      ]),
    );
    // Three "requests" whose bytes arrived in the same turn: each is its own callback (so
    // microtasks and nextTicks run between them), and each reaches its read after a
    // different number of microtask hops, as a request part-way through its pipeline would.
    const inCallback = (depth: number, keys: string[]) =>
      new Promise<number[]>((resolve, reject) =>
        setImmediate(() =>
          after(depth)
            .then(() => loadAll(reader, keys))
            .then(resolve, reject),
        ),
      );
    const results = await Promise.all([inCallback(0, ['a']), inCallback(5, ['b', 'a']), inCallback(50, ['c'])]);
    expect(results).toEqual([[1], [2, 1], [3]]);
    expect(queries).toHaveLength(1);
    expect(new Set(queries[0])).toEqual(new Set(['a', 'b', 'c']));
  });

  it('caches nothing: a read asked for after a write sees the write', async () => {
    const values = new Map([['a', 1]]);
    const { queries, reader } = fakeStore(values);
    expect(await loadAll(reader, ['a'])).toEqual([1]);
    values.set('a', 2);
    expect(await loadAll(reader, ['a'])).toEqual([2]);
    expect(queries).toEqual([['a'], ['a']]);
  });

  it('reads asked for in a later turn go in a later query', async () => {
    const { queries, reader } = fakeStore(new Map());
    const first = loadAll(reader, ['a']);
    // Callbacks of the check phase run in order: the query for 'a' has gone when this resumes.
    await new Promise((resolve) => setImmediate(resolve));
    await Promise.all([first, loadAll(reader, ['b'])]);
    expect(queries).toEqual([['a'], ['b']]);
  });

  it('rejects every read of a failed query', async () => {
    const reader = coalescedReader<string, number>(async () => {
      throw new Error('database unavailable');
    });
    const reads = [loadAll(reader, ['a']), loadAll(reader, ['b'])];
    for (const read of reads) await expect(read).rejects.toThrow('database unavailable');
  });
});
