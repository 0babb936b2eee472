import { describe, expect, it, vi } from 'vitest';
import { endWhenExpired } from './websocket.js';

/** A source that yields only what is pushed, and records its release. */
function source() {
  const waiting: Array<(result: IteratorResult<number>) => void> = [];
  const released = vi.fn();
  const iterable: AsyncIterable<number> = {
    [Symbol.asyncIterator]: () => ({
      next: () => new Promise<IteratorResult<number>>((resolve) => waiting.push(resolve)),
      return: async () => {
        released();
        return { done: true, value: undefined };
      },
    }),
  };
  return { iterable, released, push: (value: number) => waiting.shift()?.({ done: false, value }) };
}

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((done) => (resolve = done));
  return { promise, resolve };
}

describe('endWhenExpired', () => {
  it('passes values through, then at expiry answers the waiting read with the last result, ends, and releases the source', async () => {
    const { iterable, released, push } = source();
    const expiry = deferred();
    const stream = endWhenExpired(iterable, expiry.promise, () => -1);
    const first = stream.next();
    push(1);
    expect(await first).toEqual({ done: false, value: 1 });
    const waiting = stream.next();
    expiry.resolve();
    expect(await waiting).toEqual({ done: false, value: -1 });
    expect(await stream.next()).toEqual({ done: true, value: undefined });
    expect(released).toHaveBeenCalledTimes(1);
  });

  it('gives the last result to the next read when it expired while nobody was reading', async () => {
    const { iterable } = source();
    const expiry = deferred();
    const stream = endWhenExpired(iterable, expiry.promise, () => -1);
    expiry.resolve();
    await Promise.resolve();
    expect(await stream.next()).toEqual({ done: false, value: -1 });
    expect(await stream.next()).toEqual({ done: true, value: undefined });
  });

  it('ends a pending read at return(), releases the source at once, and ignores a later expiry', async () => {
    const { iterable, released, push } = source();
    const expiry = deferred();
    const last = vi.fn(() => -1);
    const stream = endWhenExpired(iterable, expiry.promise, last);
    const waiting = stream.next();
    await stream.return();
    expect(await waiting).toEqual({ done: true, value: undefined });
    expect(released).toHaveBeenCalledTimes(1);
    push(2); // the source answering late changes nothing
    expiry.resolve();
    await new Promise((resolve) => setImmediate(resolve));
    expect(last).not.toHaveBeenCalled();
    expect(await stream.next()).toEqual({ done: true, value: undefined });
  });
});
