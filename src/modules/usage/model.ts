import type { Micros } from '../../shared/quantity.js';
import type { DecisionReason } from '../entitlements/index.js';
import type { Period } from '../../shared/periods.js';

export type { DecisionReason };

export type UsageStatus = 'ACCEPTED' | 'DUPLICATE' | 'REJECTED';
/** What an event finally became; DUPLICATE is only ever a receipt status, never stored. */
export type EventOutcome = 'ACCEPTED' | 'REJECTED';

/**
 * One usage event as sent, stored once per (account, idempotency key) for the retention
 * period. Events are immutable: what happened to them lives on their posting, so settling
 * a 1,000-event batch is one document write instead of a thousand.
 */
export interface UsageEventDoc {
  /** eventId(accountId, idempotencyKey): the unique index that makes retries duplicates. */
  _id: string;
  accountId: string;
  idempotencyKey: string;
  feature: string;
  quantity: Micros;
  /** The instant the usage happened: the client's timestamp, or the request's receipt time. */
  timestamp: Date;
  /** Whether `timestamp` came from the client (it is then part of the payload). */
  clientTimestamp: boolean;
  properties: Record<string, unknown> | null;
  /** setUsage on a GAUGE (R16): `quantity` is the level to set, not a delta. Absent otherwise. */
  set?: true;
  postingId: string;
  /** Position within the posting: HARD limits are decided in this order. */
  seq: number;
  /** R14: the credits one unit burned when it was recorded (not part of the payload); absent when it burns none. */
  creditsPerUnit?: Micros;
}

/** A contiguous run of members (by seq) that ended the same way. */
export interface OutcomeRun {
  first: number;
  last: number;
  outcome: EventOutcome;
  reason: DecisionReason;
}

/**
 * The unit of work and of recovery: the events of one request that land on one counter
 * (or, with `counterId` null, the events refused before any counting). It carries the
 * lease, so a batch group is taken over whole, never split between two recoverers.
 *
 * Lifecycle: inserted RESERVED before its events → events inserted (those that hit the
 * unique index are not members) → one guarded counter update, recorded in the counter's
 * `pending` as `${_id}#${attempt}` → CounterChanged → audit → POSTED (fenced on owner + attempt)
 * → the pending entry is pulled.
 */
export interface PostingDoc {
  _id: string;
  accountId: string;
  feature: string;
  counterId: string | null;
  period: Period | null;
  /** For postings without a counter: why every member was refused (NOT_ENTITLED, …). */
  refusal: DecisionReason | null;
  state: 'RESERVED' | 'POSTED';
  /** Increments on every takeover; the pending entry of attempt n is `${_id}#${n}`. */
  attempt: number;
  lease: { owner: string; expiresAt: Date };
  actor: string;
  requestId: string | null;
  /** Request receipt time: the timestamp of events sent without one. */
  receivedAt: Date;
  /** receivedAt + retention: the posting and its events are swept after this. */
  expiresAt: Date;
  // Set when POSTED:
  /** The counter's pending entry that carried this posting's increment, or null if none did. */
  appliedAs?: string | null;
  /** Counter `used` before the increment; null when recovery adopted an earlier attempt's. */
  before?: Micros | null;
  inc?: Micros;
  /** The period's invoice was already final (R8): the events are listed for re-rating. */
  late?: boolean;
  outcomes?: OutcomeRun[];
  postedAt?: Date;
  /** R19: members REJECTED as RATE_LIMITED may retry after this instant (their window's end). */
  retryAfter?: Date;
}

/** A counter's record of one applied posting attempt: enough to undo it if it was a stale write. */
export interface PendingEntry {
  id: string;
  at: Date;
  inc: Micros;
  hours: Record<string, Micros>;
  /** Members that were not counted by this attempt. */
  rejected: Array<{ seq: number; reason: DecisionReason }>;
  /** R13: the pool member (memberKey) whose share this increment also raised; absent when not pooled. */
  member?: string;
  /** R16: a gauge change, applied by compare-and-set on `seq`: the level before it and its sequence number. */
  gauge?: { seq: number; before: Micros };
  /** R14: the burning feature's own units raised with the credits (`inc`), undone with them. */
  burn?: { feature: string; inc: Micros; hours: Record<string, Micros> };
}

/** An accepted posting that landed in a period already final (R8): usage to re-rate. */
export interface LateUsage {
  postingId: string;
  counterId: string;
  units: Micros;
  /** Accepted events in the posting. */
  events: number;
  postedAt: Date | null;
}

/** What a receipt says about one event. `entitlement` is resolved lazily by GraphQL. */
export interface UsageReceiptView {
  idempotencyKey: string;
  status: UsageStatus;
  /** For DUPLICATE: what the original became. */
  originalStatus: EventOutcome | null;
  reason: DecisionReason | null;
  accountId: string;
  feature: string;
  quantity: Micros;
  timestamp: Date;
  late: boolean;
  /** R19: for RATE_LIMITED, when the window ends. */
  retryAfter?: Date | null;
}

export interface UsageBatchView {
  accepted: number;
  duplicates: number;
  rejected: number;
  receipts: UsageReceiptView[];
}

/** A validated event, ready to be written. */
export interface UsageEventCommand {
  accountId: string;
  feature: string;
  quantity: Micros;
  idempotencyKey: string;
  timestamp: Date;
  clientTimestamp: boolean;
  properties: Record<string, unknown> | null;
  /** setUsage (R16): `quantity` is the level to set on a GAUGE. */
  set?: true;
}

/** Published to hook listeners at the exactly-once point: after every counter change. */
export interface CounterChange {
  accountId: string;
  feature: string;
  counterId: string;
  period: Period;
  before: Micros;
  after: Micros;
  /** included + granted; null when unlimited. */
  capacity: Micros | null;
  thresholds: number[];
  /** R13: the counter is a pool (its owner is `accountId`); alerts reach the members too. */
  pooled?: boolean;
  /**
   * True when recovery replays a change whose original `before` was lost with the crashed
   * process: `before`/`after` are then derived from the counter as recovery finds it.
   * Listeners must be idempotent and judge thresholds by level (after ≥ t), not by edge.
   */
  replayed: boolean;
  /**
   * R16: the change is a gauge's, and this is its sequence number in the level's history
   * (exact even on replay). A gauge falls as well as rises, so each upward crossing of a
   * threshold is its own alert, named by this number.
   */
  gaugeSeq?: number;
}
