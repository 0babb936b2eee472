import type { Logger } from '../../logger.js';
import type { FaultInjector } from './faults.js';
import { LeaseLost, newLease } from './lease.js';
import type { PreparedTerms } from './member-terms.js';
import type { PostingDoc } from './model.js';
import { postingCreatedAt, resolveTerms, type Member, type RequestOrigin } from './plan.js';
import type { UsageLedger } from './repository.js';
import type { PostingSettler } from './settle.js';
import type { OpenTerms } from './terms.js';

/**
 * R7 recovery ("on the next touch or by a sweeper within seconds"): a posting left
 * RESERVED by a crash or a stalled worker is taken over once its lease expires
 * (attempt + 1) and resumed from the guarded counter update, which adopts a previous
 * attempt's increment if its pending entry is there (see guarded-update.ts).
 *
 * A retry waits here for a posting in flight (awaitPosting); the sweeper takes over and
 * resumes directly.
 */

export interface RecoveryDeps {
  ledger: UsageLedger;
  faults: FaultInjector;
  logger: Logger;
  plugins: { readonly openTerms: OpenTerms };
  leaseMs: number;
  instanceId: string;
}

/** A posting stayed in flight longer than we are prepared to wait. */
export class UsageInProgressError extends Error {
  constructor(postingId: string) {
    super(`usage posting ${postingId} is still being processed; retry the request`);
  }
}

export class PostingRecovery {
  constructor(
    private readonly deps: RecoveryDeps,
    private readonly settler: PostingSettler,
  ) {}

  /**
   * Settles a posting this process holds. If a takeover took it meanwhile (the fence
   * failed), the new owner finishes it: its outcome is awaited instead.
   */
  async settleOrAwait(
    posting: PostingDoc,
    members: Member[],
    origin: RequestOrigin,
    resumed = false,
    prepared?: Promise<PreparedTerms>,
  ): Promise<{ posting: PostingDoc; final: PostingDoc }> {
    try {
      return { posting, final: await this.settler.settle(posting, members, resumed, prepared) };
    } catch (error) {
      if (!(error instanceof LeaseLost)) throw error;
      this.deps.logger.warn({ postingId: posting._id, origin: origin.requestId }, 'usage posting was taken over; awaiting its outcome');
      const final = await this.awaitPosting(posting._id);
      if (!final) throw new Error(`usage posting ${posting._id} vanished after a takeover`);
      return { posting, final };
    }
  }

  /** Resumes a posting whose lease this process now holds (after `takeOver`). */
  async resume(posting: PostingDoc): Promise<PostingDoc> {
    const events = await this.deps.ledger.membersOf(posting._id);
    const terms = await resolveTerms(this.deps.plugins.openTerms(), events);
    const members = events.map((doc, index) => ({ index, doc, terms: terms[index]!, command: doc }));
    const origin = { actor: posting.actor, requestId: posting.requestId, receivedAt: posting.receivedAt };
    return (await this.settleOrAwait(posting, members, origin, true)).final;
  }

  /**
   * Takes over an expired lease atomically (returnDocument 'before', then the change is
   * applied locally). Null when the posting is settled or someone else holds it.
   */
  async takeOver(postingId: string, seenAttempt?: number): Promise<PostingDoc | null> {
    const now = new Date();
    const lease = newLease(this.deps.instanceId, this.deps.leaseMs, now);
    const before = await this.deps.ledger.takeOver(postingId, lease, now, seenAttempt);
    if (!before) return null;
    this.deps.faults.after('posting.taken-over', before.accountId);
    this.deps.logger.warn(
      { postingId, attempt: before.attempt + 1, previousOwner: before.lease.owner },
      'took over an expired usage posting',
    );
    return { ...before, attempt: before.attempt + 1, lease };
  }

  /**
   * Waits for a posting to be POSTED, taking it over if its owner's lease expires. Null
   * when it never came to exist: its writer died after writing the events but not the
   * posting (they are written together), so those events were never counted.
   */
  async awaitPosting(postingId: string): Promise<PostingDoc | null> {
    const deadline = Date.now() + 3 * this.deps.leaseMs + 10_000;
    let delay = 5;
    for (;;) {
      const posting = await this.deps.ledger.posting(postingId);
      if (!posting) {
        if (postingCreatedAt(postingId) + this.deps.leaseMs < Date.now()) return null;
        await sleep(delay);
        delay = Math.min(delay * 2, 100);
        continue;
      }
      if (posting.state === 'POSTED') return posting;
      if (posting.lease.expiresAt.getTime() < Date.now()) {
        const taken = await this.takeOver(postingId, posting.attempt);
        if (taken) return this.resume(taken);
      }
      if (Date.now() > deadline) throw new UsageInProgressError(postingId);
      await sleep(delay);
      delay = Math.min(delay * 2, 100);
    }
  }

  /** The outcomes of several postings, by id; those that never came to exist are absent. */
  async awaitPostings(ids: string[]): Promise<Map<string, PostingDoc>> {
    const postings = await Promise.all(ids.map((id) => this.awaitPosting(id)));
    return new Map(postings.flatMap((posting) => (posting ? [[posting._id, posting] as const] : [])));
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
