import { createRequire } from 'node:module';
import type { ExecutionArgs, ExecutionResult } from 'graphql';

/** graphql's CommonJS build, as the schema's (see the note in limits.ts). */
const { createSourceEventStream, execute } = createRequire(import.meta.url)('graphql') as typeof import('graphql');

const DONE: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });

/**
 * Marks a source whose `return()` settles a pending `next()` (with the end) at once, as
 * the alert and balance queues do. LiveStream then reads it without a promise of its own
 * in between: one fewer promise, its resolvers and closures per idle subscription.
 */
export const SETTLES_ON_RETURN: unique symbol = Symbol.for('allotment.settlesPendingReadOnReturn');
// A registered symbol, so sources in modules (src/modules/alerts/queues.ts) mark themselves without importing the server layer.

/** Where a connection keeps its open streams, so that its token's expiry can end them all. */
export type StreamRegistry = Set<LiveStream>;

/**
 * graphql-js's `subscribe`, with the result stream built by LiveStream instead of
 * `mapAsyncIterator`: a subscription that waits is one object with one pending read,
 * rather than five closures, an async frame and a second wrapper for the token's expiry
 * (issue 19: idle subscription memory, docs/performance.md). Each event is executed as
 * graphql-js does it (`execute` with the event as root value).
 */
export async function subscribeLive(args: ExecutionArgs): Promise<LiveStream | ExecutionResult> {
  const resultOrStream = await createSourceEventStream(args);
  if (!isAsyncIterable(resultOrStream)) return resultOrStream as ExecutionResult;
  return new LiveStream(resultOrStream[Symbol.asyncIterator](), args);
}

/**
 * A subscription's results: each source event executed against the operation. `expire`
 * ends it with one last result (the token expired), then completion; `return()` (the
 * client unsubscribing, the socket closing) releases the source at once, even while a read
 * is pending, which an async generator could not do.
 */
export class LiveStream implements AsyncIterableIterator<ExecutionResult> {
  private finished = false;
  /** Set when the stream expired while nobody was reading: the next read gets it. */
  private lastResult: (() => ExecutionResult) | undefined;
  /** Settles the outstanding `next()`; cleared once it is settled. */
  private pending: { resolve(result: IteratorResult<ExecutionResult>): void; reject(error: unknown): void } | undefined;
  private registry: StreamRegistry | undefined;
  /** A read of a SETTLES_ON_RETURN source is outstanding. */
  private reading = false;

  constructor(
    private readonly iterator: AsyncIterator<unknown>,
    private readonly args: ExecutionArgs,
  ) {}

  /** Joins a connection's registry; ended by `expire` when the connection's token expires. */
  register(registry: StreamRegistry): void {
    if (this.finished) return;
    this.registry = registry;
    registry.add(this);
  }

  next(): Promise<IteratorResult<ExecutionResult>> {
    if (this.finished) return Promise.resolve(DONE as IteratorResult<ExecutionResult>);
    const last = this.lastResult;
    if (last) {
      this.finish();
      return Promise.resolve({ done: false, value: last() });
    }
    if ((this.iterator as { [SETTLES_ON_RETURN]?: boolean })[SETTLES_ON_RETURN]) {
      this.reading = true;
      return this.iterator.next().then(
        (outcome) => this.settled(outcome),
        (error: unknown) => {
          this.reading = false;
          throw error;
        },
      );
    }
    return new Promise<IteratorResult<ExecutionResult>>((resolve, reject) => {
      const pending = { resolve, reject };
      this.pending = pending;
      this.iterator.next().then(
        (outcome) => {
          if (this.pending !== pending) return; // released or expired meanwhile
          this.pending = undefined;
          if (outcome.done) {
            this.finish();
            resolve(DONE as IteratorResult<ExecutionResult>);
            return;
          }
          try {
            const result = execute({ ...this.args, rootValue: outcome.value });
            if (result instanceof Promise) {
              result.then(
                (value) => resolve({ done: false, value }),
                (error: unknown) => this.fail(error, reject),
              );
            } else {
              resolve({ done: false, value: result });
            }
          } catch (error) {
            this.fail(error, reject);
          }
        },
        (error: unknown) => {
          if (this.pending !== pending) return;
          this.pending = undefined;
          reject(error);
        },
      );
    });
  }

  return(): Promise<IteratorResult<ExecutionResult>> {
    this.finish();
    return Promise.resolve(DONE as IteratorResult<ExecutionResult>);
  }

  throw(error: unknown): Promise<IteratorResult<ExecutionResult>> {
    this.finish();
    return Promise.reject(error);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** Ends the stream with `last()` as its final result: now for a waiting read, else for the next one. */
  expire(last: () => ExecutionResult): void {
    if (this.finished) return;
    if (this.reading) {
      // Ending the source settles the outstanding read, which then answers `last()`.
      this.lastResult = last;
      this.finish();
      return;
    }
    const pending = this.pending;
    if (!pending) {
      this.lastResult = last;
      return;
    }
    this.pending = undefined;
    this.finish();
    pending.resolve({ done: false, value: last() });
  }

  /** The outcome of a SETTLES_ON_RETURN source's read, as the reader gets it. */
  private settled(outcome: IteratorResult<unknown>): IteratorResult<ExecutionResult> | Promise<IteratorResult<ExecutionResult>> {
    this.reading = false;
    if (this.finished) {
      const last = this.lastResult;
      this.lastResult = undefined;
      return last ? { done: false, value: last() } : (DONE as IteratorResult<ExecutionResult>);
    }
    if (outcome.done) {
      this.finish();
      return DONE as IteratorResult<ExecutionResult>;
    }
    try {
      const result = execute({ ...this.args, rootValue: outcome.value });
      if (!(result instanceof Promise)) return { done: false, value: result };
      return result.then(
        (value) => ({ done: false, value }),
        (error: unknown) => {
          this.finish();
          throw error;
        },
      );
    } catch (error) {
      this.finish();
      throw error;
    }
  }

  /** As graphql-js: a failed execution releases the source, then the error reaches the reader. */
  private fail(error: unknown, reject: (error: unknown) => void): void {
    this.finish();
    reject(error);
  }

  /** Ends the stream once: a waiting read gets the end, and the source is released. */
  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.registry?.delete(this);
    this.registry = undefined;
    const pending = this.pending;
    this.pending = undefined;
    pending?.resolve(DONE as IteratorResult<ExecutionResult>);
    try {
      // The source failing to close must not keep the client's stream open.
      this.iterator.return?.()?.catch(() => undefined);
    } catch {
      // as above, for a source whose return() throws synchronously
    }
  }
}

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function';
}
