import { TurnBatch } from '../../db/turn-batch.js';
import type { Logger } from '../../logger.js';
import type { AuditLog } from '../audit/index.js';
import { InjectedFault, type FaultInjector } from './faults.js';
import type { GuardedUpdate, Settlement } from './guarded-update.js';
import type { UsagePublisher } from './events.js';
import { LeaseLost } from './lease.js';
import type { PreparedTerms } from './member-terms.js';
import type { PostingDoc } from './model.js';
import type { Member } from './plan.js';
import { outcomeRuns, postingAuditEntries } from './receipts.js';
import type { PostedFields, UsageLedger } from './repository.js';
import { RateGate, type GateResult } from './rate-gate.js';
import type { RateWindows } from './rate-windows.js';

/**
 * Settling one posting, fresh or resumed, after its events are written (SPEC §6 steps
 * 2–5, in this engine's order):
 *
 *   the guarded counter update  →  CounterChanged published, with the audit entries
 *   →  POSTED, fenced on owner + attempt  →  the pending entry pulled, off the request path
 *
 * A crash after any of these writes leaves the posting RESERVED, and recovery replays
 * from the counter update (which then adopts its own entry). So the hooks and the audit
 * both come before POSTED: the counter change is published at alerts' exactly-once point
 * (R9), and the audit entries carry deterministic ids, so a replay cannot duplicate them.
 */

export interface SettleDeps {
  ledger: UsageLedger;
  audit: AuditLog;
  /** Publishes CounterChanged at the exactly-once point. */
  events: UsagePublisher;
  faults: FaultInjector;
  logger: Logger;
  /** R19's rate windows; without them nothing is rate limited (engine unit tests). */
  rateWindows?: RateWindows;
}

export class PostingSettler {
  private readonly pulls = new Set<Promise<void>>();
  private readonly rateGate: RateGate | null;
  /** Issue 19: the pending pulls, and the POSTED marks, of one turn's postings share one command each. */
  private readonly pullBatch: TurnBatch<{ counterId: string; entryId: string }, undefined>;
  private readonly postedBatch: TurnBatch<{ posting: PostingDoc; posted: PostedFields }, boolean>;

  constructor(
    private readonly deps: SettleDeps,
    private readonly guardedUpdate: GuardedUpdate,
  ) {
    this.pullBatch = new TurnBatch(async (pulls) => {
      await deps.ledger.pullPending(pulls);
      return pulls.map(() => undefined);
    });
    this.postedBatch = new TurnBatch((items) => deps.ledger.markPosted(items));
    this.rateGate = deps.rateWindows ? new RateGate({ windows: deps.rateWindows, faults: deps.faults, logger: deps.logger }) : null;
  }

  /** Settles a posting this process holds the lease of; throws LeaseLost if a takeover took it. */
  async settle(posting: PostingDoc, members: Member[], resumed: boolean, prepared?: Promise<PreparedTerms>): Promise<PostingDoc> {
    const memberDocs = members.map((member) => member.doc);
    // R19: the rate window first; what it refuses never reaches the counter (rate-gate.ts).
    const gate: GateResult = this.rateGate
      ? await this.rateGate.admit(posting, members, resumed)
      : { passed: members, limited: [], retryAfter: null, windowId: null };
    const counted = await this.guardedUpdate.apply(posting, gate.passed, resumed, prepared);
    const settlement: Settlement = { ...counted, decisions: [...counted.decisions, ...gate.limited], retryAfter: gate.retryAfter };
    await this.rateGate?.release(posting, gate, counted.decisions);
    // Both must be done before POSTED (recovery replays both), neither needs the other.
    await Promise.all([
      settlement.change ? this.deps.events.publish('CounterChanged', settlement.change) : undefined,
      this.deps.audit.recordMany(postingAuditEntries(posting, memberDocs, settlement), { replay: true }),
    ]);
    this.deps.faults.after('audit.written', posting.accountId);
    const final = await this.markPosted(posting, settlement);
    this.deps.faults.after('posting.posted', posting.accountId);
    if (settlement.appliedAs && posting.counterId) this.pullLater(posting.counterId, settlement.appliedAs, posting.accountId);
    this.rateGate?.pullLater(posting, gate);
    return final;
  }

  /** Waits for pulls still in flight (before the database closes). */
  async drain(): Promise<void> {
    await Promise.all([...this.pulls, this.rateGate?.drain()]);
  }

  /** §6 step 3, fenced: only the current owner of the current attempt may settle. */
  private async markPosted(posting: PostingDoc, settlement: Settlement): Promise<PostingDoc> {
    const posted: PostedFields = {
      state: 'POSTED',
      appliedAs: settlement.appliedAs,
      before: settlement.before,
      inc: settlement.inc,
      late: settlement.late,
      outcomes: outcomeRuns(settlement.decisions),
      postedAt: new Date(),
      ...(settlement.retryAfter ? { retryAfter: settlement.retryAfter } : {}),
    };
    if (!(await this.postedBatch.add({ posting, posted }))) throw new LeaseLost();
    return { ...posting, ...posted };
  }

  /**
   * §6 step 5 off the request path: once POSTED the outcome is final and the entry is
   * only housekeeping (a later update of the counter is unaffected by it). If it fails,
   * the sweeper pulls the entry a lease later. The pulls of one turn share one bulkWrite
   * (src/db/turn-batch.ts).
   */
  private pullLater(counterId: string, entryId: string, accountId: string): void {
    const pull: Promise<void> = this.pullBatch
      .add({ counterId, entryId })
      .then(() => this.deps.faults.after('pending.pulled', accountId))
      .catch((error: unknown) => {
        if (!(error instanceof InjectedFault))
          this.deps.logger.warn({ err: error, counterId, entryId }, 'pulling a settled pending entry failed; the sweeper will');
      })
      .finally(() => this.pulls.delete(pull));
    this.pulls.add(pull);
  }
}
