import type { Logger } from '../../logger.js';
import { type Periodic, startPeriodic } from '../../shared/periodic.js';
import { toMicros } from '../../shared/quantity.js';
import type { UsageEngine } from './engine.js';
import type { PendingEntry, PostingDoc } from './model.js';
import type { UsageLedger } from './repository.js';

export interface SweeperDeps {
  engine: UsageEngine;
  ledger: UsageLedger;
  logger: Logger;
  leaseMs: number;
  intervalMs: number;
}

/**
 * Tags the sweeper's periodic reads, so tools that count a request's database round trips
 * (the test harness's requestCommands) can tell them from the request's own.
 */
export const SWEEPER_COMMENT = 'allotment:usage-sweeper';

/** How many postings or counters one pass looks at, so a backlog drains without stalls. */
const PASS_LIMIT = 100;
const RETENTION_EVERY_PASSES = 60;

/**
 * The background half of R7's recovery ("or by a sweeper within seconds"). Every pass:
 *
 * 1. takes over postings whose lease expired while RESERVED and resumes them;
 * 2. settles counters' pending entries older than a lease: pulls the ones whose posting
 *    is POSTED with that very entry, and undoes stale ones (an attempt that landed after
 *    its posting was settled by another attempt);
 * 3. now and then, deletes postings and events past retention (no TTL indexes, SPEC §5).
 *
 * Every instance runs one; all steps are atomic and idempotent, so they may race freely.
 */
export class UsageSweeper {
  private periodic: Periodic | undefined;
  private passes = 0;
  /** What this sweeper has done since start: recovery should resume, and almost never undo. */
  readonly totals = { resumed: 0, pulled: 0, compensated: 0, expired: 0 };

  constructor(private readonly deps: SweeperDeps) {}

  start(): void {
    this.periodic ??= startPeriodic(
      () => this.pass(),
      this.deps.intervalMs,
      (error) => this.deps.logger.error({ err: error }, 'usage sweeper pass failed'),
    );
  }

  async stop(): Promise<void> {
    await this.periodic?.stop();
    this.periodic = undefined;
  }

  /** One pass; exported for tests and for an operator's manual run. */
  async pass(): Promise<{ resumed: number; pulled: number; compensated: number; expired: number }> {
    const resumed = await this.resumeExpired();
    const { pulled, compensated } = await this.settlePending();
    const expired = this.passes++ % RETENTION_EVERY_PASSES === 0 ? await this.deleteExpired() : 0;
    this.totals.resumed += resumed;
    this.totals.pulled += pulled;
    this.totals.compensated += compensated;
    this.totals.expired += expired;
    return { resumed, pulled, compensated, expired };
  }

  private async resumeExpired(): Promise<number> {
    const { ledger, engine, logger } = this.deps;
    const expired = await ledger.expiredLeases(PASS_LIMIT, SWEEPER_COMMENT);
    let resumed = 0;
    for (const { _id, attempt } of expired) {
      try {
        const taken = await engine.takeOver(_id, attempt);
        if (!taken) continue;
        await engine.resume(taken);
        resumed++;
      } catch (error) {
        logger.error({ err: error, postingId: _id }, 'usage sweeper could not resume a posting; the next pass retries');
      }
    }
    return resumed;
  }

  private async settlePending(): Promise<{ pulled: number; compensated: number }> {
    const { ledger, logger } = this.deps;
    // Younger entries belong to operations still finishing normally.
    const cutoff = new Date(Date.now() - this.deps.leaseMs);
    const counters = await ledger.countersWithPendingBefore(cutoff, PASS_LIMIT, SWEEPER_COMMENT);
    const stale = counters.flatMap((counter) =>
      counter.pending.filter((entry) => entry.at < cutoff).map((entry) => ({ counterId: counter._id, entry })),
    );
    if (stale.length === 0) return { pulled: 0, compensated: 0 };
    const postingIds = [...new Set(stale.map(({ entry }) => postingIdOf(entry)))];
    const postings = new Map((await ledger.postingStates(postingIds)).map((posting) => [posting._id, posting]));
    let pulled = 0;
    let compensated = 0;
    for (const { counterId, entry } of stale) {
      const verdict = judge(entry, postings.get(postingIdOf(entry)));
      if (verdict === 'in-flight') continue;
      if (verdict === 'settled') {
        await ledger.pullPending([{ counterId, entryId: entry.id }]);
        pulled++;
      } else if (await ledger.compensate(counterId, entry)) {
        compensated++;
        logger.warn({ counterId, entry: entry.id, inc: toMicros(entry.inc).toString() }, 'undid a stale counter write');
      }
    }
    return { pulled, compensated };
  }

  /** Deletes settled postings past retention and their events; their keys become free again. */
  async deleteExpired(): Promise<number> {
    const { ledger } = this.deps;
    const ids = await ledger.expiredPostings(1_000, SWEEPER_COMMENT);
    if (ids.length === 0) return 0;
    await ledger.deletePostings(ids);
    return ids.length;
  }
}

export function postingIdOf(entry: Pick<PendingEntry, 'id'>): string {
  return entry.id.slice(0, entry.id.lastIndexOf('#'));
}

/**
 * What a pending entry is: `in-flight` while its posting is RESERVED (recovery owns it),
 * `settled` when the posting ended with exactly this entry as its increment, `stale`
 * otherwise: an attempt that landed after its posting was settled without it.
 */
export function judge(
  entry: PendingEntry,
  posting: Pick<PostingDoc, 'state' | 'appliedAs'> | undefined,
): 'in-flight' | 'settled' | 'stale' {
  if (!posting || posting.state === 'RESERVED') return 'in-flight';
  return posting.appliedAs === entry.id ? 'settled' : 'stale';
}
