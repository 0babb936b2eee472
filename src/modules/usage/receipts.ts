import { toMicros, type Micros } from '../../shared/quantity.js';
import type { AuditInput } from '../audit/index.js';
import type { MemberDecision } from './decisions.js';
import type { OutcomeRun, PostingDoc, UsageEventDoc, UsageReceiptView } from './model.js';
import { replayableAuditId } from './repository.js';

/**
 * What a settled posting says about its events: receipts, and the audit entries that
 * record them (R10). Pure functions over stored documents.
 */

/** What settling a posting decided, as far as receipts and audit are concerned. */
export interface PostingSettlement {
  before: Micros | null;
  inc: Micros;
  late: boolean;
  decisions: MemberDecision[];
}

/**
 * Outcomes as runs of consecutive members. A run never spans a gap (the seq of an event
 * that turned out to be a duplicate), so last − first + 1 is always its number of events.
 */
export function outcomeRuns(decisions: readonly MemberDecision[]): OutcomeRun[] {
  const runs: OutcomeRun[] = [];
  for (const { seq, outcome, reason } of [...decisions].sort((a, b) => a.seq - b.seq)) {
    const last = runs.at(-1);
    if (last && last.last === seq - 1 && last.outcome === outcome && last.reason === reason) last.last = seq;
    else runs.push({ first: seq, last: seq, outcome, reason });
  }
  return runs;
}

export function hasOutcome(posting: PostingDoc, event: UsageEventDoc): boolean {
  return posting.outcomes?.some((run) => run.first <= event.seq && event.seq <= run.last) ?? false;
}

/** A receipt from a settled posting; `as` DUPLICATE for a retry of an event already recorded. */
export function receiptOf(posting: PostingDoc, event: UsageEventDoc, as: 'DUPLICATE' | null): UsageReceiptView {
  const run = posting.outcomes?.find((candidate) => candidate.first <= event.seq && event.seq <= candidate.last);
  if (posting.state !== 'POSTED' || !run) throw new Error(`event ${event._id} has no outcome on posting ${posting._id}`);
  return {
    idempotencyKey: event.idempotencyKey,
    status: as ?? run.outcome,
    originalStatus: as ? run.outcome : null,
    reason: run.reason,
    accountId: event.accountId,
    feature: event.feature,
    quantity: toMicros(event.quantity),
    timestamp: event.timestamp,
    late: posting.late ?? false,
    retryAfter: run.reason === 'RATE_LIMITED' ? (posting.retryAfter ?? null) : null,
  };
}

export function outcomeOf(receipt: UsageReceiptView) {
  return receipt.originalStatus ?? (receipt.status === 'REJECTED' ? 'REJECTED' : 'ACCEPTED');
}

/**
 * R10 for a posting: one entry for what was counted and one for what was refused. A
 * single event is its own target; a batch group is audited as one entry listing its keys
 * (the events themselves are the per-event ledger, kept for the retention period).
 */
export function postingAuditEntries(posting: PostingDoc, events: UsageEventDoc[], settlement: PostingSettlement): AuditInput[] {
  if (events.length === 0) return [];
  const bySeq = new Map(events.map((event) => [event.seq, event]));
  const accepted = settlement.decisions.filter((d) => d.outcome === 'ACCEPTED');
  const rejected = settlement.decisions.filter((d) => d.outcome === 'REJECTED');
  const single = events.length === 1 ? events[0]! : null;
  const target = single
    ? { targetType: 'UsageEvent', targetId: single.idempotencyKey }
    : { targetType: 'UsagePosting', targetId: posting._id };
  const base = { actor: posting.actor, requestId: posting.requestId, accountId: posting.accountId, at: posting.receivedAt, ...target };
  const entries: AuditInput[] = [];
  const describe = (decision: MemberDecision) => {
    const event = bySeq.get(decision.seq)!;
    return {
      idempotencyKey: event.idempotencyKey,
      quantity: toMicros(event.quantity),
      timestamp: event.timestamp,
      reason: decision.reason,
      // setUsage (R16): `quantity` is the level set, not a delta.
      ...(event.set ? { set: true } : {}),
    };
  };
  if (accepted.length > 0) {
    entries.push({
      ...base,
      id: replayableAuditId(posting.receivedAt, posting._id, 'usage.accepted'),
      action: 'usage.accepted',
      before: settlement.before === null ? null : { used: settlement.before },
      after: {
        feature: posting.feature,
        counterId: posting.counterId,
        late: settlement.late,
        used: settlement.before === null ? null : settlement.before + settlement.inc,
        ...(single
          ? describe(accepted[0]!)
          : { quantity: settlement.inc, events: accepted.length, idempotencyKeys: accepted.map((d) => bySeq.get(d.seq)!.idempotencyKey) }),
      },
    });
  }
  if (rejected.length > 0) {
    entries.push({
      ...base,
      id: replayableAuditId(posting.receivedAt, posting._id, 'usage.rejected'),
      action: 'usage.rejected',
      after: single
        ? { feature: posting.feature, ...describe(rejected[0]!) }
        : { feature: posting.feature, events: rejected.map(describe) },
    });
  }
  return entries;
}

/** "Count once, keep both receipts" (R7): every DUPLICATE receipt handed out is audited. */
export function duplicateAuditEntry(
  receipt: UsageReceiptView,
  origin: { actor: string; requestId: string | null },
  index: number,
  total: number,
): AuditInput {
  return {
    actor: origin.actor,
    requestId: origin.requestId,
    accountId: receipt.accountId,
    action: 'usage.duplicate',
    targetType: 'UsageEvent',
    targetId: receipt.idempotencyKey,
    after: {
      ...receipt,
      ...(total > 1 ? { batchIndex: index } : {}),
    },
  };
}
