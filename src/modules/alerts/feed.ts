import type { ChangeStream, ChangeStreamDocument, Collection, Document, Filter, ResumeToken } from 'mongodb';
import type { Logger } from '../../logger.js';

export type FeedMode = 'change-stream' | 'polling';

export interface InsertFeedOptions<T extends { _id: unknown }> {
  /** For logs: which collection this feed follows. */
  name: string;
  /**
   * The collection followed; `start` may name the same collection through another client.
   * Stored documents go through `parse`, so the driver's view of them is not trusted.
   */
  collection: Collection<T & Document>;
  /** Date field stamped by the writer, read by polling and by catch-up after stream errors. */
  timeField: string;
  parse(doc: unknown): T;
  timeOf(doc: T): Date;
  /** Receives each newly seen document once, in delivery order. Must not throw. */
  deliver(docs: T[]): void;
  /** Orders a batch found by a query (change streams already deliver in commit order). */
  orderBatch?(docs: T[]): T[];
  logger: Logger;
  /** 'auto' (default) uses a change stream when the server supports one, else polls. */
  mode?: 'auto' | 'polling';
  pollIntervalMs?: number;
  /**
   * How far back each query looks. A write is found as long as its commit lags its
   * timestamp, plus clock skew between instances, by less than this.
   */
  overlapMs?: number;
}

/**
 * Between polls. A poll is one ids-only range query (see catchUp), so polling often is
 * cheap; 100 ms keeps cross-instance delivery well under 250 ms at the 99th percentile.
 */
export const DEFAULT_POLL_INTERVAL_MS = 100;
const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 5_000;

/**
 * Follows the inserts into one collection on every instance, so each instance can push
 * them to its own subscribers.
 *
 * - Change stream (replica sets, Atlas, the embedded stand-in): delivery in commit order,
 *   a few milliseconds after the insert. The resume token of the last event is kept; when
 *   the stream fails it is reopened with `resumeAfter`, and a catch-up query over the
 *   window before the failure covers a stream that had no token yet or lost it.
 * - Polling (a standalone mongod: `$changeStream` is refused with 40573): every
 *   `pollIntervalMs` a query reads the documents stamped within the last `overlapMs`.
 *   Re-reading that overlap is what finds a write that committed late (after a later one
 *   was already seen); documents are deduplicated by `_id`.
 *
 * Either way each document is delivered at most once per instance (the `seen` map covers
 * the overlap window), and at least once as long as commit lag plus clock skew stays
 * under `overlapMs`.
 */
export class InsertFeed<T extends { _id: unknown }> {
  private state: 'idle' | FeedMode | 'stopped' = 'idle';
  private stream: ChangeStream | undefined;
  private resumeToken: ResumeToken | undefined;
  private loop: Promise<void> | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private pruneTimer: NodeJS.Timeout | undefined;
  private wake: (() => void) | undefined;
  /** id → writer timestamp (ms) of documents already delivered within the window. */
  private readonly seen = new Map<string, number>();
  /** Lower bound of the next polling query (local clock, ms). */
  private windowStart = 0;
  private readonly pollIntervalMs: number;
  private readonly overlapMs: number;
  private collection: Collection<T & Document>;

  constructor(private readonly options: InsertFeedOptions<T>) {
    this.pollIntervalMs = options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS;
    this.overlapMs = options.overlapMs ?? 5_000;
    this.collection = options.collection;
  }

  get mode(): FeedMode | undefined {
    return this.state === 'change-stream' || this.state === 'polling' ? this.state : undefined;
  }

  /**
   * Resolves once the feed is established: inserts from then on will be delivered.
   * `through` reads the collection over another client (the app gives feeds their own, so
   * long-polling getMores never hold request connections or count as request traffic);
   * `mode` overrides the constructor's.
   */
  async start(options: { through?: Collection<T & Document>; mode?: 'auto' | 'polling' } = {}): Promise<void> {
    if (this.state !== 'idle') return;
    if (options.through) this.collection = options.through;
    // Forget ids once no query can return them again: catch-up looks back one overlap
    // from a failure, after at most one retry wait.
    this.pruneTimer = setInterval(() => this.prune(Date.now() - 2 * this.overlapMs - RETRY_MAX_MS), this.overlapMs);
    this.pruneTimer.unref();
    if ((options.mode ?? this.options.mode) !== 'polling') {
      const stream = this.open(undefined);
      try {
        // The first round trip opens the cursor; from here on no insert can slip past.
        const first = await stream.tryNext();
        this.stream = stream;
        this.state = 'change-stream';
        if (first) this.onChange(first, stream);
        this.loop = this.follow(stream);
        return;
      } catch (error) {
        await stream.close().catch(() => undefined);
        if (!isChangeStreamUnsupported(error)) throw error;
        this.options.logger.info(
          { feed: this.options.name, code: (error as { code?: unknown }).code },
          'change streams unsupported; polling instead',
        );
      }
    }
    await this.startPolling();
  }

  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    this.state = 'stopped';
    clearTimeout(this.pollTimer);
    clearInterval(this.pruneTimer);
    this.wake?.();
    await this.stream?.close().catch(() => undefined);
    await this.loop?.catch(() => undefined);
  }

  /**
   * Delivers documents this instance has just stored, without waiting for the feed; the
   * feed's own copy of them is then recognised as seen and dropped.
   */
  deliverDirect(docs: readonly T[]): void {
    if (this.state === 'stopped' || this.state === 'idle') return;
    const fresh = docs.filter((doc) => this.markSeen(doc));
    if (fresh.length > 0) this.options.deliver(fresh);
  }

  private open(resumeAfter: ResumeToken | undefined): ChangeStream {
    return this.collection.watch([{ $match: { operationType: 'insert' } }], {
      ...(resumeAfter ? { resumeAfter } : {}),
      maxAwaitTimeMS: 1_000,
    });
  }

  private async follow(initial: ChangeStream): Promise<void> {
    let stream = initial;
    let retryMs = RETRY_MIN_MS;
    while (this.state === 'change-stream') {
      try {
        for (;;) {
          const change = await stream.next();
          this.onChange(change, stream);
          retryMs = RETRY_MIN_MS;
        }
      } catch (error) {
        if (this.state !== 'change-stream') return;
        const failedAt = Date.now();
        await stream.close().catch(() => undefined);
        if (isChangeStreamUnsupported(error)) {
          await this.startPolling();
          return;
        }
        this.options.logger.warn({ err: error, feed: this.options.name, retryMs }, 'change stream failed; reopening');
        await this.sleep(retryMs);
        retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
        if (this.state !== 'change-stream') return;
        stream = this.open(this.resumeToken);
        this.stream = stream;
        try {
          const first = await stream.tryNext();
          // The stream is open again; anything committed before that is found by the query.
          await this.catchUp(failedAt - this.overlapMs);
          if (first) this.onChange(first, stream);
        } catch (reopenError) {
          if (this.state !== 'change-stream') return;
          this.options.logger.warn({ err: reopenError, feed: this.options.name }, 'change stream reopen failed');
          // Loop: the next iteration's next() fails fast and retries with a longer wait.
        }
      }
    }
  }

  private onChange(change: ChangeStreamDocument, stream: ChangeStream): void {
    this.resumeToken = stream.resumeToken ?? change._id;
    if (change.operationType === 'invalidate') {
      // The stream ends (collection dropped, or history gone): resuming after this token
      // would only invalidate again. Reopen fresh; the catch-up query covers the gap.
      this.resumeToken = undefined;
      return;
    }
    if (change.operationType !== 'insert') return;
    const doc = this.parse(change.fullDocument);
    if (doc && this.markSeen(doc)) this.options.deliver([doc]);
  }

  private parse(raw: unknown): T | undefined {
    try {
      return this.options.parse(raw);
    } catch (error) {
      this.options.logger.error({ err: error, feed: this.options.name }, 'skipping a feed document that does not parse');
      return undefined;
    }
  }

  private markSeen(doc: T): boolean {
    const key = String(doc._id);
    if (this.seen.has(key)) return false;
    this.seen.set(key, this.options.timeOf(doc).getTime());
    return true;
  }

  private prune(before: number): void {
    for (const [key, time] of this.seen) if (time < before) this.seen.delete(key);
  }

  /**
   * Delivers every unseen document stamped at or after `since`. Each query looks back a
   * whole overlap (seconds) but most of what it finds was seen by the previous ones, so it
   * asks first for ids only and then reads in full just the unseen ones: a busy feed's
   * poll costs one small query, not a re-read of every document of the last seconds.
   */
  private async catchUp(since: number, deliver = true): Promise<void> {
    const { timeField } = this.options;
    const collection = this.collection;
    const filter = { [timeField]: { $gte: new Date(since) } } as Filter<T & Document>;
    const stamped = await collection.find(filter, { projection: { _id: 1 } }).toArray();
    const unseen = stamped.filter((row) => !this.seen.has(String(row._id))).map((row) => row._id);
    if (unseen.length === 0) return;
    const raw = await collection
      .find({ _id: { $in: unseen } } as Filter<T & Document>)
      .sort({ [timeField]: 1 })
      .toArray();
    const fresh: T[] = [];
    for (const row of raw) {
      const doc = this.parse(row);
      if (doc && this.markSeen(doc)) fresh.push(doc);
    }
    if (deliver && fresh.length > 0) this.options.deliver(this.options.orderBatch ? this.options.orderBatch(fresh) : fresh);
  }

  private async startPolling(): Promise<void> {
    this.state = 'polling';
    // The first query only learns what already exists; nobody can be subscribed yet.
    const startedAt = Date.now();
    await this.catchUp(startedAt - this.overlapMs, false);
    this.windowStart = startedAt - this.overlapMs;
    this.schedulePoll();
  }

  private schedulePoll(): void {
    if (this.state !== 'polling') return;
    this.pollTimer = setTimeout(() => {
      this.loop = this.poll().finally(() => this.schedulePoll());
    }, this.pollIntervalMs);
  }

  private async poll(): Promise<void> {
    const startedAt = Date.now();
    try {
      await this.catchUp(this.windowStart);
      this.windowStart = startedAt - this.overlapMs;
      this.prune(this.windowStart);
    } catch (error) {
      // Keep the window where it was, so the next poll covers this one's span too.
      if (this.state === 'polling') this.options.logger.warn({ err: error, feed: this.options.name }, 'feed poll failed');
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      timer.unref();
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}

/** Errors meaning "this server has no change streams" (standalone mongod, some stores). */
export function isChangeStreamUnsupported(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const { code, message } = error as { code?: unknown; message?: unknown };
  if (code === 40573 || code === 40324 || code === 115) return true;
  return typeof message === 'string' && /only supported on replica sets|unrecognized pipeline stage name: '\$changeStream'/i.test(message);
}
