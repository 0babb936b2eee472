/**
 * When a grant counts, at one-hour resolution (R5). Usage is kept per UTC hour (the
 * counters' hour buckets), so a grant boundary inside an hour cannot be placed among that
 * hour's units unless someone looked at the bucket at that instant. Hence the rule:
 *
 * - A boundary that happens now (a grant effective at issuance, a void) records an
 *   HourCut: the hour's usage counted so far. Burn splits the hour there, and enforcement
 *   uses the exact instant. Issue at 10:20 and the usage counted before 10:20 is not
 *   burned by the grant; void at 10:20 and only the usage counted before stays burned.
 * - Any other boundary is rounded INWARD to whole hours: an effectiveAt in the future or
 *   in an earlier hour starts the grant at the next whole hour (10:20 → 11:00), an
 *   expiresAt ends it at the whole hour before (14:30 → 14:00).
 *
 * So usage outside [effectiveAt, min(expiresAt, voidedAt)) never burns a grant, and
 * enforcement (a grant counts at instant t iff `isActiveAt(decisionWindow, t)`) never
 * reaches beyond burn (a grant covers a slice of an hour iff the slice lies inside its
 * window): every unit a HARD check let through thanks to a grant is a unit it burns.
 */
import type { GrantDoc } from './model.js';

export const HOUR_MS = 3_600_000;

export const floorHour = (at: Date): Date => new Date(Math.floor(at.getTime() / HOUR_MS) * HOUR_MS);
export const ceilHour = (at: Date): Date => new Date(Math.ceil(at.getTime() / HOUR_MS) * HOUR_MS);
const isWholeHour = (at: Date): boolean => at.getTime() % HOUR_MS === 0;

/** [start, end): end null is open-ended. Empty when end <= start. */
export interface GrantWindow {
  start: Date;
  end: Date | null;
}

export type WindowFacts = Pick<GrantDoc, 'effectiveAt' | 'expiresAt' | 'startCut' | 'voidedAt' | 'voidCut'>;

export function grantWindow(grant: WindowFacts): GrantWindow {
  const start = grant.startCut ? grant.startCut.at : ceilHour(grant.effectiveAt);
  let end = grant.expiresAt ? floorHour(grant.expiresAt) : null;
  if (grant.voidedAt) {
    // Until the void's cut is written, the void counts from the start of its hour.
    const voidEnd = grant.voidCut ? grant.voidCut.at : floorHour(grant.voidedAt);
    if (end === null || voidEnd < end) end = voidEnd;
  }
  return { start, end };
}

/**
 * The window decisions (checks, the HARD guard) use: the burn window, except that a void
 * ends it at the start of its hour. The void's cut is read after the requests that may
 * have used the grant have settled (GrantService.void); a decision made after the void
 * could still land after that read, so none may rely on the voided grant inside its last
 * partial hour. Decisions are thereby never more generous than burn.
 */
export function decisionWindow(grant: WindowFacts): GrantWindow {
  const window = grantWindow(grant);
  if (!grant.voidedAt) return window;
  const voidHour = floorHour(grant.voidedAt);
  return { start: window.start, end: window.end === null || voidHour < window.end ? voidHour : window.end };
}

export function isEmptyWindow(window: GrantWindow): boolean {
  return window.end !== null && window.end.getTime() <= window.start.getTime();
}

export function isActiveAt(window: GrantWindow, at: Date): boolean {
  const t = at.getTime();
  return window.start.getTime() <= t && (window.end === null || t < window.end.getTime());
}

/** Whether the window covers all of [from, to). */
export function covers(window: GrantWindow, from: number, to: number): boolean {
  return window.start.getTime() <= from && (window.end === null || to <= window.end.getTime());
}

/**
 * Where a new grant starts: at issuance itself (with a cut) when effectiveAt is omitted
 * or falls earlier in the current hour; otherwise at effectiveAt rounded up to the hour.
 * A whole-hour effectiveAt needs no cut: it starts exactly there.
 */
export function startAtIssue(effectiveAt: Date | null, now: Date): { effectiveAt: Date; cutAt: Date | null } {
  if (effectiveAt === null) return { effectiveAt: now, cutAt: now };
  const sameHour = floorHour(effectiveAt).getTime() === floorHour(now).getTime();
  if (!isWholeHour(effectiveAt) && sameHour && effectiveAt.getTime() <= now.getTime()) return { effectiveAt, cutAt: now };
  return { effectiveAt, cutAt: null };
}
