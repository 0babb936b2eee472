/**
 * The two per-subscription buffers between the hub (which pushes) and graphql-ws (which
 * pulls with `for await`, one message at a time, awaiting each socket write). Both are
 * bounded, so a consumer that stops reading cannot make the server grow without limit.
 * `return()` (graphql-ws calls it when the client completes or the socket closes) runs
 * `release`, which removes the hub listener.
 */

const DONE: IteratorReturnResult<undefined> = { done: true, value: undefined };

/**
 * Both queues settle a pending `next()` at once when `return()` is called; the server's
 * LiveStream (src/server/live-stream.ts) reads such sources without a promise of its own
 * in between (issue 19: idle subscription memory). A registered symbol, read there.
 */
const SETTLES_ON_RETURN = Symbol.for('allotment.settlesPendingReadOnReturn');

export type AlertDelivery<T> = { kind: 'alert'; alert: T } | { kind: 'overflow'; bound: number };

/**
 * Alerts in arrival order, at most `bound` waiting. Alerts must not be dropped silently,
 * so on overflow the queue is discarded, the listener released, and the consumer's next
 * read gets one `overflow` item (the resolver turns it into an error) and then the end.
 */
export class AlertQueue<T> implements AsyncIterableIterator<AlertDelivery<T>> {
  private buffer: T[] = [];
  private waiter: ((result: IteratorResult<AlertDelivery<T>, undefined>) => void) | undefined;
  private state: 'open' | 'overflowed' | 'closed' = 'open';
  private release: (() => void) | undefined;

  constructor(private readonly bound: number) {}

  /** Set once the listener is registered; called exactly once when the queue stops. */
  onRelease(release: () => void): void {
    this.release = release;
  }

  get size(): number {
    return this.buffer.length;
  }

  push(alert: T): void {
    if (this.state !== 'open') return;
    if (this.waiter) {
      const waiter = this.waiter;
      this.waiter = undefined;
      waiter({ done: false, value: { kind: 'alert', alert } });
      return;
    }
    if (this.buffer.length >= this.bound) {
      this.state = 'overflowed';
      this.buffer = [];
      this.stopListening();
      return;
    }
    this.buffer.push(alert);
  }

  next(): Promise<IteratorResult<AlertDelivery<T>, undefined>> {
    const alert = this.buffer.shift();
    if (alert !== undefined) return Promise.resolve({ done: false, value: { kind: 'alert', alert } });
    if (this.state === 'overflowed') {
      this.state = 'closed';
      return Promise.resolve({ done: false, value: { kind: 'overflow', bound: this.bound } });
    }
    if (this.state === 'closed') return Promise.resolve(DONE);
    return new Promise((resolve) => (this.waiter = resolve));
  }

  return(): Promise<IteratorResult<AlertDelivery<T>, undefined>> {
    this.close();
    return Promise.resolve(DONE);
  }

  throw(): Promise<IteratorResult<AlertDelivery<T>, undefined>> {
    this.close();
    return Promise.resolve(DONE);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  get [SETTLES_ON_RETURN](): true {
    return true;
  }

  private close(): void {
    this.state = 'closed';
    this.buffer = [];
    this.stopListening();
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.(DONE);
  }

  private stopListening(): void {
    const release = this.release;
    this.release = undefined;
    release?.();
  }
}

/**
 * Live balances: only the latest state per key matters, so an update replaces the one
 * still waiting for the same key (bounded by the number of keys). Reads are paced to one
 * per `minIntervalMs`: updates arriving in between are coalesced, and the last state
 * always comes out (trailing edge). Keys waiting longest go first.
 */
export class LatestValueQueue<T> implements AsyncIterableIterator<T> {
  private readonly pending = new Map<string, T>();
  private waiter: ((result: IteratorResult<T, undefined>) => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private lastEmitAt = -Infinity;
  private closed = false;
  private release: (() => void) | undefined;

  constructor(private readonly minIntervalMs: number) {}

  onRelease(release: () => void): void {
    this.release = release;
  }

  get size(): number {
    return this.pending.size;
  }

  offer(key: string, value: T): void {
    if (this.closed) return;
    // Delete first so an updated key moves behind keys that have waited longer.
    this.pending.delete(key);
    this.pending.set(key, value);
    this.serve();
  }

  next(): Promise<IteratorResult<T, undefined>> {
    if (this.closed) return Promise.resolve(DONE);
    return new Promise((resolve) => {
      this.waiter = resolve;
      this.serve();
    });
  }

  return(): Promise<IteratorResult<T, undefined>> {
    this.close();
    return Promise.resolve(DONE);
  }

  throw(): Promise<IteratorResult<T, undefined>> {
    this.close();
    return Promise.resolve(DONE);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  get [SETTLES_ON_RETURN](): true {
    return true;
  }

  /** Hands the oldest pending value to a waiting reader, now or when the pace allows. */
  private serve(): void {
    if (!this.waiter || this.pending.size === 0 || this.timer) return;
    const wait = this.lastEmitAt + this.minIntervalMs - performance.now();
    if (wait > 0) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.serve();
      }, wait);
      return;
    }
    const [key, value] = this.pending.entries().next().value as [string, T];
    this.pending.delete(key);
    this.lastEmitAt = performance.now();
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter({ done: false, value });
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.pending.clear();
    const release = this.release;
    this.release = undefined;
    release?.();
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.(DONE);
  }
}
