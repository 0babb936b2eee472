import type { Logger } from '../../logger.js';
import { toMicros, type Micros } from '../../shared/quantity.js';
import { type RateLimit, rateWindowId, windowAt } from '../../shared/rate-window.js';
import type { FaultInjector } from './faults.js';
import type { MemberDecision } from './decisions.js';
import type { PostingDoc } from './model.js';
import type { Member } from './plan.js';
import type { RateEntry, RateWindows } from './rate-windows.js';

/**
 * R19 in the engine: before the guarded counter update, a posting's members pass a rate
 * window (fixed windows; docs/rate-limits.md). The window is a document per (account,
 * feature, window size, window start) of the request's receipt time, updated by one
 * guarded `$inc` (`count <= limit − admitted` in the filter), so the limit holds across
 * instances. Members it refuses are REJECTED with RATE_LIMITED and never reach the
 * counter: nothing counted. Members the counter then refuses (QUOTA_EXCEEDED) give their
 * units back (`release`), so a quota refusal does not eat the window.
 *
 * Exactly once (R7): the window's entry is keyed by the posting id, so a retried or
 * resumed posting never consumes twice; a resumed attempt that finds the entry adopts
 * its decision (which members were admitted), then resumes the counter step as usual.
 */

const MAX_ATTEMPTS = 100;
/**
 * Ended windows are deleted only this long after they ended: a request received in a
 * window may reach the database after the next one opened (a slow or resumed request),
 * and must find its window's count, not a fresh document.
 */
export const ENDED_WINDOW_KEEP_MS = 15 * 60_000;

export interface WindowDecision {
  /** Seqs admitted, in order. */
  admitted: number[];
  limited: number[];
  inc: Micros;
  /** The highest count the window may hold for every admitted member to fit. */
  guard: Micros;
}

/** Admits members in order while they fit under `limit` from `count` on. Pure. */
export function decideWindow(members: ReadonlyArray<{ seq: number; quantity: Micros }>, count: Micros, limit: Micros): WindowDecision {
  const admitted: number[] = [];
  const limited: number[] = [];
  let inc = 0n;
  for (const { seq, quantity } of members) {
    if (count + inc + quantity <= limit) {
      inc += quantity;
      admitted.push(seq);
    } else limited.push(seq);
  }
  return { admitted, limited, inc, guard: limit - inc };
}

/** What the gate let through, and what it refused. */
export interface GateResult {
  passed: Member[];
  limited: MemberDecision[];
  /** The window's end when it refused a member (the receipts' retryAfter). */
  retryAfter: Date | null;
  /** The window consumed, when one was: where to release and pull. */
  windowId: string | null;
}

export class RateGate {
  /** Housekeeping writes off the request path, awaited by drain() before the database closes. */
  private readonly background = new Set<Promise<void>>();

  constructor(private readonly deps: { windows: RateWindows; faults: FaultInjector; logger: Logger }) {}

  async drain(): Promise<void> {
    await Promise.all([...this.background]);
  }

  private later(write: Promise<void>, message: string, windowId: string): void {
    const tracked: Promise<void> = write
      .catch((error: unknown) => this.deps.logger.warn({ err: error, windowId }, message))
      .finally(() => this.background.delete(tracked));
    this.background.add(tracked);
  }

  async admit(posting: PostingDoc, members: Member[], resumed: boolean): Promise<GateResult> {
    const open: GateResult = { passed: members, limited: [], retryAfter: null, windowId: null };
    const limit = posting.counterId === null || members.length === 0 ? null : rateLimitOf(members);
    if (limit === null) return open;
    const { start, end } = windowAt(limit.window, posting.receivedAt);
    const window = {
      _id: rateWindowId(posting.accountId, posting.feature, limit.window, start),
      accountId: posting.accountId,
      feature: posting.feature,
      window: limit.window,
      start,
      end,
    };
    const ordered = [...members].sort((a, b) => a.doc.seq - b.doc.seq);
    const result = (limitedSeqs: readonly number[]): GateResult => {
      const refused = new Set(limitedSeqs);
      return {
        passed: ordered.filter((member) => !refused.has(member.doc.seq)),
        limited: [...refused].map((seq) => ({ seq, outcome: 'REJECTED' as const, reason: 'RATE_LIMITED' as const })),
        retryAfter: refused.size > 0 ? end : null,
        windowId: window._id,
      };
    };

    let observed: Micros | undefined;
    if (resumed) {
      const found = await this.deps.windows.get(window._id);
      const entry = found?.entries.find((candidate) => candidate.id === posting._id);
      if (entry) return result(entry.limited);
      observed = found ? toMicros(found.count) : undefined;
    }
    const quantities = ordered.map((member) => ({ seq: member.doc.seq, quantity: toMicros(member.doc.quantity) }));
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      // A guess of 0 is safe: the guard makes a wrong one fail, and a re-read follows.
      const decision = decideWindow(quantities, observed ?? 0n, limit.limit);
      if (decision.inc === 0n) return { ...result(decision.limited), windowId: null };
      const entry: RateEntry = { id: posting._id, inc: decision.inc, limited: decision.limited };
      const before = await this.deps.windows.consume(window, entry, decision.guard);
      if (before === 'not-applied') {
        const found = await this.deps.windows.get(window._id);
        // A stalled attempt of this very posting got there first: its decision stands.
        const mine = found?.entries.find((candidate) => candidate.id === posting._id);
        if (mine) return result(mine.limited);
        observed = found ? toMicros(found.count) : 0n;
        continue;
      }
      this.deps.faults.after('rate.consumed', posting.accountId);
      if (before === null) {
        // A new window opened: the pair's long-ended ones go (off the request path).
        this.later(
          this.deps.windows.deleteEnded(posting.accountId, posting.feature, new Date(start.getTime() - ENDED_WINDOW_KEEP_MS)),
          'deleting ended rate windows failed; the next window retries',
          window._id,
        );
      }
      return result(decision.limited);
    }
    throw new Error(`rate window ${window._id} kept changing under ${MAX_ATTEMPTS} attempts`);
  }

  /** Members the window admitted but the counter refused give their units back (once). */
  async release(posting: PostingDoc, gate: GateResult, decisions: readonly MemberDecision[]): Promise<void> {
    if (gate.windowId === null) return;
    const refused = new Set(decisions.filter((decision) => decision.outcome === 'REJECTED').map((decision) => decision.seq));
    const units = gate.passed
      .filter((member) => refused.has(member.doc.seq))
      .reduce((sum, member) => sum + toMicros(member.doc.quantity), 0n);
    if (units > 0n) await this.deps.windows.release(gate.windowId, posting._id, units);
  }

  /** Once POSTED: the posting's entries leave the window document (housekeeping; failures are harmless). */
  pullLater(posting: PostingDoc, gate: GateResult): void {
    if (gate.windowId === null) return;
    this.later(
      this.deps.windows.pull(gate.windowId, posting._id),
      'pulling a settled rate window entry failed; the window expires anyway',
      gate.windowId,
    );
  }
}

/**
 * The rate limit a posting is held to: that of its latest member's terms (a posting is
 * one request's events for one counter; their terms differ only across a contract change).
 */
function rateLimitOf(members: readonly Member[]): RateLimit | null {
  const latest = members.reduce((best, member) => (member.doc.timestamp.getTime() >= best.doc.timestamp.getTime() ? member : best));
  return latest.terms.hasAccess ? (latest.terms.rateLimit ?? null) : null;
}
