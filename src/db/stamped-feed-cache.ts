import type { Collection, Document, Filter } from 'mongodb';
import type { Logger } from '../logger.js';
import { Lru } from '../shared/lru.js';

/** Between polls of a feed. */
export const FEED_INTERVAL_MS = 100;
/** How far back each poll looks: covers commit lag and clock skew between instances. */
const OVERLAP_MS = 5_000;
/** A read older than this never stores its result; invalidations are remembered this long. */
const READ_HORIZON_MS = 10_000;

export interface StampedFeedOptions {
  /** Keys kept (LRU); 0 turns the cache off. */
  maxEntries: number;
  /** Entries are served only while the feed's last successful poll started within this; 0 turns the cache off. */
  maxStalenessMs: number;
  pollIntervalMs?: number;
}

/** A document the feed can follow: every write stamps `updatedAt` (and may bump `revision`). */
export interface StampedDoc {
  _id: string;
  updatedAt?: Date;
  revision?: number;
}

/** What one cached collection is: how its documents group into entries, and how they are told apart in logs and profiles. */
export interface StampedCollection<TDoc> {
  /** The string field that groups documents into entries (an account id). */
  key: keyof TDoc & string;
  /** Returned lists are sorted by this. */
  compare: (a: TDoc, b: TDoc) => number;
  /** The `comment` the feed's polls carry (background reads, not a request's round trips). */
  comment: string;
  /** The feed's name in log lines. */
  name: string;
  /** The poll's projection; by default `_id`, the key, `updatedAt` and `revision`. */
  projection?: Document;
}

/**
 * Documents of one collection, grouped by a key (an account), for the hot path, kept
 * fresh across instances by a feed of `updatedAt` stamps (docs/performance.md, "Terms
 * cache"). The contracts (contracts/terms-cache.ts) and the grants (grants/grant-cache.ts)
 * are each one of these.
 *
 * - **This instance's writes** invalidate at once: every write path calls `invalidate`
 *   after the write is acknowledged (or failed), before the mutation answers.
 * - **Other instances' writes** are found by the feed: every write stamps `updatedAt`
 *   (and bumps `revision`), and every `pollIntervalMs` one ids-only query asks for the
 *   documents stamped within the last few seconds (an overlap, as the alert feed's
 *   polling); a `(revision, updatedAt)` not seen before invalidates its key. The documents
 *   are the feed, so no crash can separate a write from its feed row.
 * - **Bounded staleness**: entries are served only while the last successful poll
 *   started less than `maxStalenessMs` ago. A write acknowledged at t is found by every
 *   poll that starts after t, so an entry served at `now` was checked by a poll that
 *   started after `now - maxStalenessMs`: a change made elsewhere is seen within that
 *   bound. A stalled feed or failing polls make every read go to the database.
 * - **Read/invalidate race**: each invalidation takes a sequence number; a read stores
 *   its result only when no invalidation of its keys came after it started.
 */
export class StampedFeedCache<TDoc extends StampedDoc> {
  private readonly entries: Lru<string, TDoc[]>;
  private seq = 0;
  /** Reads started before this sequence number never store (see clear). */
  private floor = 0;
  /** key → the sequence number and time of its last invalidation, kept READ_HORIZON_MS. */
  private readonly tombstones = new Map<string, { seq: number; at: number }>();
  private lastOkPollStart = Number.NEGATIVE_INFINITY;
  /** Lower bound of the next poll's query (local clock, ms); kept across failed polls. */
  private windowStart: number | undefined;
  /** document id → the `(revision, updatedAt)` last seen, and its stamp (ms), while in the window. */
  private readonly seen = new Map<string, { version: string; at: number }>();
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;
  private running = false;
  readonly enabled: boolean;
  readonly maxStalenessMs: number;
  private readonly pollIntervalMs: number;

  constructor(
    private readonly collection: Collection<TDoc>,
    private readonly logger: Logger,
    options: StampedFeedOptions,
    private readonly shape: StampedCollection<TDoc>,
  ) {
    this.enabled = options.maxEntries > 0 && options.maxStalenessMs > 0;
    this.entries = new Lru(options.maxEntries);
    this.maxStalenessMs = options.maxStalenessMs;
    this.pollIntervalMs = options.pollIntervalMs ?? Math.min(FEED_INTERVAL_MS, Math.floor(options.maxStalenessMs / 2));
  }

  /** Keys held now. */
  get size(): number {
    return this.entries.size;
  }

  /** Whether entries may be served: the feed's last successful poll started within the bound. */
  healthy(now = Date.now()): boolean {
    return this.enabled && now - this.lastOkPollStart <= this.maxStalenessMs;
  }

  /**
   * The documents of these keys, sorted by `compare`: cached ones while the feed is healthy,
   * the rest from `load` (which must return the documents of exactly the keys asked).
   */
  async read(accountIds: readonly string[], load: (accountIds: readonly string[]) => Promise<TDoc[]>): Promise<TDoc[]> {
    const ids = [...new Set(accountIds)];
    if (!this.enabled) return load(ids);
    const found: TDoc[] = [];
    const missing: string[] = [];
    if (this.healthy()) {
      for (const id of ids) {
        const hit = this.entries.get(id);
        if (hit) found.push(...hit);
        else missing.push(id);
      }
    } else missing.push(...ids);
    if (missing.length === 0) return found.sort(this.shape.compare);
    const startSeq = this.seq;
    const startedAt = Date.now();
    const loaded = await load(missing);
    this.store(missing, loaded, startSeq, startedAt);
    return [...found, ...loaded].sort(this.shape.compare);
  }

  /** Forgets these keys' documents; reads in flight for them will not store theirs. */
  invalidate(accountIds: Iterable<string>): void {
    const at = Date.now();
    for (const id of accountIds) {
      this.seq++;
      this.entries.delete(id);
      this.tombstones.set(id, { seq: this.seq, at });
    }
  }

  /** Forgets everything; no read in flight stores. */
  clear(): void {
    this.seq++;
    this.floor = this.seq;
    this.entries.clear();
  }

  /** Starts the feed: resolves after the first poll (entries are served from then on). */
  async start(): Promise<void> {
    if (!this.enabled || this.running) return;
    this.running = true;
    await this.pollOnce().catch((error: unknown) => this.logger.warn({ err: error }, `${this.shape.name}: first poll failed`));
    this.schedule();
  }

  /** Stops the feed; entries are no longer served once the bound has passed. */
  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.timer);
    await this.polling;
  }

  /** One poll of the feed (the timer calls it; tests may too). Throws when the query fails. */
  pollOnce(): Promise<void> {
    this.polling ??= this.poll().finally(() => {
      this.polling = undefined;
    });
    return this.polling;
  }

  private schedule(): void {
    if (!this.running) return;
    this.timer = setTimeout(() => {
      void this.pollOnce()
        .catch((error: unknown) =>
          this.logger.warn({ err: error }, `${this.shape.name} poll failed; reads go to the database until one succeeds`),
        )
        .finally(() => this.schedule());
    }, this.pollIntervalMs);
    this.timer.unref();
  }

  private async poll(): Promise<void> {
    const startedAt = Date.now();
    const since = this.windowStart ?? startedAt - OVERLAP_MS;
    const rows = await this.collection
      .find({ updatedAt: { $gte: new Date(since) } } as Filter<TDoc>, {
        projection: this.shape.projection ?? { _id: 1, [this.shape.key]: 1, updatedAt: 1, revision: 1 },
        comment: this.shape.comment,
      })
      .toArray();
    const changed = new Set<string>();
    for (const row of rows) {
      const at = row.updatedAt instanceof Date ? row.updatedAt.getTime() : 0;
      const version = versionOf(row);
      if (this.seen.get(row._id)?.version === version) continue;
      this.seen.set(row._id, { version, at });
      // An entry that already holds this very version (read after the write, e.g. this
      // instance's own) is current: forgetting it would only cost the next request a read.
      const key = this.keyOf(row as TDoc);
      if (this.entries.peek(key)?.some((doc) => doc._id === row._id && versionOf(doc) === version)) continue;
      changed.add(key);
    }
    this.invalidate(changed);
    this.windowStart = startedAt - OVERLAP_MS;
    this.lastOkPollStart = Math.max(this.lastOkPollStart, startedAt);
    for (const [id, { at }] of this.seen) if (at < this.windowStart) this.seen.delete(id);
    for (const [id, { at }] of this.tombstones) if (at < startedAt - READ_HORIZON_MS) this.tombstones.delete(id);
  }

  private store(accountIds: readonly string[], docs: readonly TDoc[], startSeq: number, startedAt: number): void {
    if (startSeq < this.floor || Date.now() - startedAt > READ_HORIZON_MS) return;
    const byAccount = new Map<string, TDoc[]>(accountIds.map((id) => [id, []]));
    for (const doc of docs) byAccount.get(this.keyOf(doc))?.push(doc);
    for (const [id, list] of byAccount) {
      const tombstone = this.tombstones.get(id);
      if (tombstone && tombstone.seq > startSeq) continue;
      this.entries.set(id, list);
    }
  }

  private keyOf(doc: TDoc): string {
    return doc[this.shape.key] as string;
  }
}

/** A document's `(revision, updatedAt)`, as the feed tells versions apart. */
function versionOf(doc: StampedDoc): string {
  return `${doc.revision ?? 0}:${doc.updatedAt instanceof Date ? doc.updatedAt.getTime() : 0}`;
}
