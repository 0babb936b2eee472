import { ObjectId } from 'mongodb';
import { z } from 'zod';
import { toMicros, type Micros } from '../../shared/quantity.js';
import type { EntitlementView } from '../entitlements/index.js';
import type { CounterChange as UsageCounterChange } from '../usage/index.js';

/**
 * A counter change as the alerts module takes it: the usage module's CounterChanged (at its
 * exactly-once point), with `replayed` optional for direct callers, and, for a pool (R13),
 * the members whose subscribers hear it too (added by the composition root).
 */
export type CounterChange = Omit<UsageCounterChange, 'replayed'> & {
  /** Recovery replays judge thresholds by level (after ≥ t) since `before` may be lost. */
  replayed?: boolean;
  /** R13: the pool's members (the owner's descendants), whose subscribers hear it too. */
  members?: string[];
};

/** What the alerts module publishes: every alert stored, when its insert (or a replay) is done. */
export interface AlertEvents {
  AlertFired: AlertDoc;
}

/**
 * A fired threshold alert (R9). The id is `${counterId}|${threshold}|${armEpoch}`: the
 * counter id already names the account, feature and period, so inserting the document is
 * the exactly-once point and a duplicate-key error means "already fired".
 */
export interface AlertDoc {
  _id: string;
  accountId: string;
  feature: string;
  counterId: string;
  threshold: number;
  /** The arm epoch of (counter, threshold) the alert fired in; see ArmDoc. */
  epoch: number;
  /** Usage and capacity the crossing was judged on, in micro-units. */
  used: Micros;
  capacity: Micros;
  periodStart: Date;
  /** Null for entitlements that never reset. */
  periodEnd: Date | null;
  triggeredAt: Date;
  /**
   * R13: a pool's alert (one per pool, period and threshold) is delivered to the
   * subscribers of every account listed here (the owner and its members). Absent: the
   * account's own subscribers only.
   */
  audience?: string[];
}

/**
 * The arm epoch of one (counter, threshold). It starts at 0 (no document) and is bumped
 * when capacity grows and usage falls back below the threshold, which re-arms it: the
 * next crossing has a new alert id. A new period is a new counter, so epochs reset too.
 */
export interface ArmDoc {
  /** `${counterId}|${threshold}` */
  _id: string;
  counterId: string;
  threshold: number;
  epoch: number;
  updatedAt: Date;
}

/**
 * One row of the live-balance feed: "this account's balance of this feature changed".
 * It carries no figures; subscribers recompute the entitlement, so a missed or repeated
 * row costs at most one stale or one extra update. Rows expire (swept, no TTL: SPEC §5).
 */
export interface BalanceChangeDoc {
  _id: ObjectId;
  accountId: string;
  feature: string;
  counterId: string | null;
  at: Date;
  expiresAt: Date;
}

/** One live-balance push (`EntitlementUpdate`): the recomputed view of one feature. */
export interface EntitlementUpdateView {
  accountId: string;
  feature: string;
  entitlement: EntitlementView;
}

export function alertId(counterId: string, threshold: number, epoch: number): string {
  return `${counterId}|${threshold}|${epoch}`;
}

export function armId(counterId: string, threshold: number): string {
  return `${counterId}|${threshold}`;
}

/**
 * Account and feature of a counter id (`${accountId}|${feature}|${periodStartIso}`), read
 * from the right: feature keys and ISO dates never contain "|".
 */
export function parseCounterId(counterId: string): { accountId: string; feature: string; periodStart: Date } {
  const parts = counterId.split('|');
  if (parts.length < 3) throw new Error(`not a counter id: "${counterId}"`);
  const periodStart = new Date(parts.at(-1)!);
  if (Number.isNaN(periodStart.getTime())) throw new Error(`not a counter id: "${counterId}"`);
  return { accountId: parts.slice(0, -2).join('|'), feature: parts.at(-2)!, periodStart };
}

const micros = z.unknown().transform((value, ctx) => {
  try {
    return toMicros(value);
  } catch {
    ctx.addIssue({ code: 'custom', message: 'expected Int64 micro-units' });
    return z.NEVER;
  }
});

const AlertDocSchema = z.object({
  _id: z.string(),
  accountId: z.string(),
  feature: z.string(),
  counterId: z.string(),
  threshold: z.number().int(),
  epoch: z.number().int(),
  used: micros,
  capacity: micros,
  periodStart: z.date(),
  periodEnd: z.date().nullable(),
  triggeredAt: z.date(),
  audience: z.array(z.string()).optional(),
});

const BalanceChangeDocSchema = z.object({
  _id: z.instanceof(ObjectId),
  accountId: z.string(),
  feature: z.string(),
  counterId: z.string().nullable(),
  at: z.date(),
  expiresAt: z.date(),
});

/** Stored rows pass through these at the boundary (feed and queries), so types stay honest. */
export const parseAlertDoc = (doc: unknown): AlertDoc => AlertDocSchema.parse(doc);
export const parseBalanceChangeDoc = (doc: unknown): BalanceChangeDoc => BalanceChangeDocSchema.parse(doc);
