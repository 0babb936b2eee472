/**
 * Retry schedule: after the n-th failed attempt wait base·2^(n−1), capped at 6 h, times a
 * jitter in [0.75, 1.25) so receivers recovering from an outage are not hit in lockstep.
 * A delivery keeps being retried until its first attempt is 24 h old, then fails once more
 * and is marked FAILED (redeliverWebhook starts it again).
 */
export const RETRY_WINDOW_MS = 24 * 3600_000;
export const MAX_DELAY_MS = 6 * 3600_000;

export function nextDelayMs(attempts: number, baseMs: number, random = Math.random): number {
  const exponential = Math.min(baseMs * 2 ** Math.max(0, attempts - 1), MAX_DELAY_MS);
  return Math.round(exponential * (0.75 + random() * 0.5));
}

/** Whether a delivery created at `createdAt` that just failed gives up (its window is over). */
export const givesUp = (createdAt: Date, now: Date): boolean => now.getTime() - createdAt.getTime() >= RETRY_WINDOW_MS;
