import type { Micros } from '../../shared/quantity.js';
import { type EffectiveTerms, hardCeiling } from '../entitlements/index.js';
import type { CounterChange, DecisionReason, EventOutcome } from './model.js';
import type { Decide } from './terms.js';

/** What the counter step decided: the basis of the audit, the receipts and POSTED. */
export interface Settlement {
  appliedAs: string | null;
  before: Micros | null;
  inc: Micros;
  late: boolean;
  decisions: MemberDecision[];
  change: CounterChange | null;
  /** R19: when the rate window that refused members ends (set by settle.ts). */
  retryAfter?: Date | null;
}

/** One event of a posting, in posting order, with the terms at its timestamp. */
export interface MemberTerms {
  seq: number;
  /** What the counter counts: the event's quantity, or the credits it burns (R14). */
  quantity: Micros;
  /** R14: the event's own units when it burns credits (`quantity` is then in credits). */
  units?: Micros;
  hourKey: string;
  /** The event's timestamp: terms and grants are those in force then. */
  at: Date;
  terms: EffectiveTerms;
  granted: Micros;
}

export interface MemberDecision {
  seq: number;
  outcome: EventOutcome;
  reason: DecisionReason;
}

export interface GroupDecision {
  decisions: MemberDecision[];
  /** Sum of accepted quantities. */
  inc: Micros;
  /** Accepted quantities per hour bucket. */
  hours: Record<string, Micros>;
  /**
   * The highest `used` the counter may have for every accepted HARD event to stay within
   * its limit: the update is guarded by `used <= guard` (null: nothing to guard).
   * For event i, used + (accepted quantities up to and including i) <= limit_i, so
   * used <= min_i(limit_i - prefix_i). This is R6's atomic check for a whole batch.
   */
  guard: Micros | null;
  /**
   * R13: the highest share the member may already hold in its pool counter for every
   * accepted event to stay within its cap: the update is also guarded by
   * `members.<member> <= memberGuard` (null: the member is uncapped or not pooled).
   */
  memberGuard: Micros | null;
}

/** A pool member's cap (setAccountLimit) and its share of the pool as observed (R13). */
export interface MemberCap {
  limit: Micros;
  share: Micros;
}

/** Whether acceptance depends on the counter's current value (a HARD limit applies). */
export function needsObservedUsage(members: readonly MemberTerms[]): boolean {
  return members.some((member) => member.terms.hasAccess && hardCeiling(member.terms, member.granted) !== null);
}

/**
 * Decides a posting's events in order against an observed counter value. Pure: the
 * caller makes it atomic by guarding the counter update with `guard`.
 */
export function decideGroup(members: readonly MemberTerms[], used: Micros, decide: Decide, cap: MemberCap | null = null): GroupDecision {
  const decisions: MemberDecision[] = [];
  const hours: Record<string, Micros> = {};
  let inc = 0n;
  let guard: Micros | null = null;
  for (const member of members) {
    if (!member.terms.hasAccess) {
      decisions.push({ seq: member.seq, outcome: 'REJECTED', reason: accessReason(member.terms) });
      continue;
    }
    const decision = decide(member.terms, used + inc, member.granted, member.quantity);
    if (decision.allowed && cap !== null && cap.share + inc + member.quantity > cap.limit) {
      // Beyond the member's own cap on its draw from the pool, whatever the pool's enforcement.
      decisions.push({ seq: member.seq, outcome: 'REJECTED', reason: 'QUOTA_EXCEEDED' });
      continue;
    }
    if (!decision.allowed) {
      decisions.push({ seq: member.seq, outcome: 'REJECTED', reason: decision.reason });
      continue;
    }
    inc += member.quantity;
    hours[member.hourKey] = (hours[member.hourKey] ?? 0n) + member.quantity;
    // capacity + grace (R6), from the entitlements module so checks and enforcement agree.
    const limit = hardCeiling(member.terms, member.granted);
    if (limit !== null) {
      const bound = limit - inc;
      guard = guard === null || bound < guard ? bound : guard;
    }
    decisions.push({ seq: member.seq, outcome: 'ACCEPTED', reason: decision.reason });
  }
  return { decisions, inc, hours, guard, memberGuard: cap !== null && inc > 0n ? cap.limit - inc : null };
}

/**
 * Re-derives the reasons of already-decided events once the counter's value before the
 * update is known (the accept/reject set does not change: the guard made it valid).
 */
export function reasonsAt(
  members: readonly MemberTerms[],
  decisions: readonly MemberDecision[],
  before: Micros,
  decide: Decide,
): MemberDecision[] {
  let running = before;
  return decisions.map((decision, index) => {
    const member = members[index]!;
    if (decision.outcome !== 'ACCEPTED') return decision;
    const { allowed, reason } = decide(member.terms, running, member.granted, member.quantity);
    running += member.quantity;
    return allowed ? { ...decision, reason } : decision;
  });
}

export function accessReason(terms: EffectiveTerms): DecisionReason {
  return terms.access === 'ENTITLED' ? 'NOT_ENTITLED' : terms.access;
}
