/**
 * Crash simulation for the ingestion path. The engine calls `after(point)` right after
 * every database write; a test arms a point to make the operation die there, as if the
 * process had been killed between two writes, and then checks that recovery (a retry or
 * the sweeper) restores counter = sum of accepted events. In production nothing is armed
 * and `after` is a resolved no-op.
 */
export const WRITE_POINTS = [
  /** The posting (RESERVED, with its lease) and its events are inserted, together. */
  'events.inserted',
  /** The rate window's guarded update (R19), before the counter's. */
  'rate.consumed',
  /** The guarded counter update ($inc used + hour bucket, $push pending). */
  'counter.updated',
  /** The audit entries of the posting are written. */
  'audit.written',
  /** The posting is marked POSTED (fenced on lease owner and attempt). */
  'posting.posted',
  /** The posting's pending entry is pulled from the counter (after the response). */
  'pending.pulled',
  /** Recovery took over an expired lease. */
  'posting.taken-over',
] as const;
export type WritePoint = (typeof WRITE_POINTS)[number];

export class InjectedFault extends Error {
  constructor(readonly point: WritePoint) {
    super(`injected fault after ${point}`);
    this.name = 'InjectedFault';
  }
}

export interface FaultScope {
  /** Only operations on this account die (lets concurrent tests arm faults independently). */
  accountId?: string;
  /** How many operations die at this point (default 1). */
  times?: number;
}

export class FaultInjector {
  private armed: Array<{ point: WritePoint; accountId?: string; remaining: number }> = [];

  /** The next `times` operations that reach `point` die right after that write. */
  arm(point: WritePoint, scope: FaultScope = {}): void {
    this.armed.push({ point, accountId: scope.accountId, remaining: scope.times ?? 1 });
  }

  disarm(): void {
    this.armed = [];
  }

  /** Faults armed and not fired yet. */
  get pending(): number {
    return this.armed.reduce((sum, fault) => sum + fault.remaining, 0);
  }

  after(point: WritePoint, accountId?: string): void {
    if (this.armed.length === 0) return;
    const fault = this.armed.find(
      (candidate) => candidate.point === point && (candidate.accountId === undefined || candidate.accountId === accountId),
    );
    if (!fault) return;
    if (--fault.remaining <= 0) this.armed = this.armed.filter((candidate) => candidate !== fault);
    throw new InjectedFault(point);
  }
}
