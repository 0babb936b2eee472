import type { Collection } from 'mongodb';
import type { Logger } from '../../logger.js';
import { Lru } from '../../shared/lru.js';
import { compareOldestFirst, type ContractDoc } from './model.js';

/** The feed's polls are tagged, so they are never mistaken for a request's round trips. */
export const TERMS_FEED_COMMENT = 'allotment:terms-feed';

/** Between polls of the contracts feed. */
export const TERMS_FEED_INTERVAL_MS = 100;
/** How far back each poll looks: covers commit lag and clock skew between instances. */
const OVERLAP_MS = 5_000;
/** A read older than this never stores its result; invalidations are remembered this long. */
const READ_HORIZON_MS = 10_000;

export interface TermsCacheOptions {
  /** Accounts kept (LRU); 0 turns the cache off. */
  maxEntries: number;
  /** Entries are served only while the feed's last successful poll started within this; 0 turns the cache off. */
  maxStalenessMs: number;
  pollIntervalMs?: number;
}

/**
 * Each account's contract documents, as stored, for the hot path (checks and recordUsage),
 * so a steady-state check sends no `find contracts` (docs/performance.md, "Terms cache").
 *
 * - **This instance's writes** invalidate at once: every contract write goes through
 *   `ContractRepository.touched` after it is acknowledged (or failed), before the mutation
 *   answers.
 * - **Other instances' writes** are found by the feed: every write stamps `updatedAt`
 *   (and `revision`), and every `pollIntervalMs` one ids-only query asks for the contracts
 *   stamped within the last few seconds (an overlap, as the alert feed's polling); a
 *   `(revision, updatedAt)` not seen before invalidates its account. The documents are
 *   the feed, so no crash can separate a write from its feed row.
 * - **Bounded staleness**: entries are served only while the last successful poll
 *   started less than `maxStalenessMs` ago. A write acknowledged at t is found by every
 *   poll that starts after t, so an entry served at `now` was checked by a poll that
 *   started after `now - maxStalenessMs`: a change made elsewhere is seen within that
 *   bound. A stalled feed or failing polls make every read go to the database.
 * - **Read/invalidate race**: each invalidation takes a sequence number; a read stores
 *   its result only when no invalidation of its accounts came after it started.
 */
export class ContractTermsCache {
  private readonly entries: Lru<string, ContractDoc[]>;
  private seq = 0;
  /** Reads started before this sequence number never store (see clear). */
  private floor = 0;
  /** account → the sequence number and time of its last invalidation, kept READ_HORIZON_MS. */
  private readonly tombstones = new Map<string, { seq: number; at: number }>();
  private lastOkPollStart = Number.NEGATIVE_INFINITY;
  /** Lower bound of the next poll's query (local clock, ms); kept across failed polls. */
  private windowStart: number | undefined;
  /** contract id → the `(revision, updatedAt)` last seen, and its stamp (ms), while in the window. */
  private readonly seen = new Map<string, { version: string; at: number }>();
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;
  private running = false;
  readonly enabled: boolean;
  readonly maxStalenessMs: number;
  private readonly pollIntervalMs: number;

  constructor(
    private readonly collection: Collection<ContractDoc>,
    private readonly logger: Logger,
    options: TermsCacheOptions,
  ) {
    this.enabled = options.maxEntries > 0 && options.maxStalenessMs > 0;
    this.entries = new Lru(options.maxEntries);
    this.maxStalenessMs = options.maxStalenessMs;
    this.pollIntervalMs = options.pollIntervalMs ?? Math.min(TERMS_FEED_INTERVAL_MS, Math.floor(options.maxStalenessMs / 2));
  }

  /** Accounts held now. */
  get size(): number {
    return this.entries.size;
  }

  /** Whether entries may be served: the feed's last successful poll started within the bound. */
  healthy(now = Date.now()): boolean {
    return this.enabled && now - this.lastOkPollStart <= this.maxStalenessMs;
  }

  /**
   * The contracts of these accounts, oldest first: cached ones while the feed is healthy,
   * the rest from `load` (which must return the contracts of exactly the accounts asked).
   */
  async read(accountIds: readonly string[], load: (accountIds: readonly string[]) => Promise<ContractDoc[]>): Promise<ContractDoc[]> {
    const ids = [...new Set(accountIds)];
    if (!this.enabled) return load(ids);
    const found: ContractDoc[] = [];
    const missing: string[] = [];
    if (this.healthy()) {
      for (const id of ids) {
        const hit = this.entries.get(id);
        if (hit) found.push(...hit);
        else missing.push(id);
      }
    } else missing.push(...ids);
    if (missing.length === 0) return found.sort(compareOldestFirst);
    const startSeq = this.seq;
    const startedAt = Date.now();
    const loaded = await load(missing);
    this.store(missing, loaded, startSeq, startedAt);
    return found.length === 0 ? loaded : [...found, ...loaded].sort(compareOldestFirst);
  }

  /** Forgets these accounts' contracts; reads in flight for them will not store theirs. */
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
    await this.pollOnce().catch((error: unknown) => this.logger.warn({ err: error }, 'terms feed: first poll failed'));
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
        .catch((error: unknown) => this.logger.warn({ err: error }, 'terms feed poll failed; reads go to the database until one succeeds'))
        .finally(() => this.schedule());
    }, this.pollIntervalMs);
    this.timer.unref();
  }

  private async poll(): Promise<void> {
    const startedAt = Date.now();
    const since = this.windowStart ?? startedAt - OVERLAP_MS;
    const rows = await this.collection
      .find(
        { updatedAt: { $gte: new Date(since) } },
        { projection: { _id: 1, accountId: 1, updatedAt: 1, revision: 1 }, comment: TERMS_FEED_COMMENT },
      )
      .toArray();
    const changed = new Set<string>();
    for (const row of rows) {
      const at = row.updatedAt instanceof Date ? row.updatedAt.getTime() : 0;
      const version = `${row.revision ?? 0}:${at}`;
      if (this.seen.get(row._id)?.version === version) continue;
      this.seen.set(row._id, { version, at });
      changed.add(row.accountId);
    }
    this.invalidate(changed);
    this.windowStart = startedAt - OVERLAP_MS;
    this.lastOkPollStart = Math.max(this.lastOkPollStart, startedAt);
    for (const [id, { at }] of this.seen) if (at < this.windowStart) this.seen.delete(id);
    for (const [id, { at }] of this.tombstones) if (at < startedAt - READ_HORIZON_MS) this.tombstones.delete(id);
  }

  private store(accountIds: readonly string[], docs: readonly ContractDoc[], startSeq: number, startedAt: number): void {
    if (startSeq < this.floor || Date.now() - startedAt > READ_HORIZON_MS) return;
    const byAccount = new Map<string, ContractDoc[]>(accountIds.map((id) => [id, []]));
    for (const doc of docs) byAccount.get(doc.accountId)?.push(doc);
    for (const [id, list] of byAccount) {
      const tombstone = this.tombstones.get(id);
      if (tombstone && tombstone.seq > startSeq) continue;
      this.entries.set(id, list);
    }
  }
}
