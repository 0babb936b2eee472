import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { LiveStream, SETTLES_ON_RETURN, subscribeLive, type StreamRegistry } from './live-stream.js';

const { buildSchema, parse } = createRequire(import.meta.url)('graphql') as typeof import('graphql');

const schema = buildSchema(`
  type Query { ok: Boolean }
  type Subscription { tick(by: Int!): Int }
`);

/** A source of ticks that yields only what is pushed, and records its release. */
function ticks() {
  const waiting: Array<(result: IteratorResult<number>) => void> = [];
  let released = 0;
  const iterator: AsyncIterableIterator<number> = {
    next: () => new Promise<IteratorResult<number>>((resolve) => waiting.push(resolve)),
    return: async () => {
      released++;
      return { done: true, value: undefined };
    },
    [Symbol.asyncIterator]: () => iterator,
  };
  return { iterator, released: () => released, push: (value: number) => waiting.shift()?.({ done: false, value }) };
}

async function open(source: { iterator: AsyncIterator<number> }): Promise<LiveStream> {
  const stream = await subscribeLive({
    schema,
    document: parse('subscription ($by: Int!) { tick(by: $by) }'),
    variableValues: { by: 10 },
    subscribeFieldResolver: () => source.iterator,
    fieldResolver: (event: number, args: { by: number }) => event * args.by,
  });
  if (!(stream instanceof LiveStream)) throw new Error(`not a stream: ${JSON.stringify(stream)}`);
  return stream;
}

const expired = () => ({ errors: [] as never[], data: { expired: true } });

describe('subscribeLive', () => {
  it('executes each source event against the operation, in order', async () => {
    const source = ticks();
    const stream = await open(source);
    const first = stream.next();
    source.push(1);
    expect(await first).toEqual({ done: false, value: { data: { tick: 10 } } });
    const second = stream.next();
    source.push(2);
    expect(await second).toEqual({ done: false, value: { data: { tick: 20 } } });
  });

  it('answers errors of the operation as graphql-js does (no stream)', async () => {
    const result = await subscribeLive({ schema, document: parse('subscription ($by: Int!) { tick(by: $by) }'), variableValues: {} });
    expect(result).not.toBeInstanceOf(LiveStream);
    expect((result as { errors: unknown[] }).errors).toHaveLength(1);
  });

  it('ends a waiting read with the last result at expiry, leaves the registry, and releases the source', async () => {
    const source = ticks();
    const stream = await open(source);
    const registry: StreamRegistry = new Set();
    stream.register(registry);
    expect(registry.size).toBe(1);
    const waiting = stream.next();
    stream.expire(expired);
    expect(await waiting).toEqual({ done: false, value: expired() });
    expect(await stream.next()).toEqual({ done: true, value: undefined });
    expect(registry.size).toBe(0);
    expect(source.released()).toBe(1);
  });

  it('gives the last result to the next read when it expired while nobody was reading', async () => {
    const source = ticks();
    const stream = await open(source);
    stream.expire(expired);
    expect(await stream.next()).toEqual({ done: false, value: expired() });
    expect(await stream.next()).toEqual({ done: true, value: undefined });
  });

  it('ends a pending read at return(), releases the source at once, and ignores later events and expiry', async () => {
    const source = ticks();
    const stream = await open(source);
    const registry: StreamRegistry = new Set();
    stream.register(registry);
    const waiting = stream.next();
    await stream.return();
    expect(await waiting).toEqual({ done: true, value: undefined });
    expect(source.released()).toBe(1);
    expect(registry.size).toBe(0);
    source.push(3);
    stream.expire(expired);
    expect(await stream.next()).toEqual({ done: true, value: undefined });
    stream.register(registry); // a finished stream does not join
    expect(registry.size).toBe(0);
  });

  describe('over a source that settles a pending read on return (as the alert queues do)', () => {
    /** Like the alert queue: one waiting read, settled with the end by return(). */
    function settlingSource() {
      let waiter: ((result: IteratorResult<number>) => void) | undefined;
      const released = { count: 0 };
      const source = {
        next: () => new Promise<IteratorResult<number>>((resolve) => (waiter = resolve)),
        return: async () => {
          released.count++;
          waiter?.({ done: true, value: undefined });
          return { done: true as const, value: undefined };
        },
        [Symbol.asyncIterator]: () => source,
        [SETTLES_ON_RETURN]: true,
      };
      return { source, released, push: (value: number) => waiter?.({ done: false, value }) };
    }

    async function queue() {
      const { source, released, push } = settlingSource();
      const stream = await open({ iterator: source });
      return { alerts: { push }, released, stream };
    }

    it('executes events, and answers the last result to a waiting read at expiry', async () => {
      const { alerts, released, stream } = await queue();
      const first = stream.next();
      alerts.push(4);
      expect(await first).toEqual({ done: false, value: { data: { tick: 40 } } });
      const waiting = stream.next();
      stream.expire(expired);
      expect(await waiting).toEqual({ done: false, value: expired() });
      expect(await stream.next()).toEqual({ done: true, value: undefined });
      expect(released.count).toBe(1);
    });

    it('ends a waiting read at return()', async () => {
      const { released, stream } = await queue();
      const waiting = stream.next();
      await stream.return();
      expect(await waiting).toEqual({ done: true, value: undefined });
      expect(released.count).toBe(1);
    });
  });
});
