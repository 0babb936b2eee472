import { formatQuantity, type Micros } from './quantity.js';

/**
 * R19 and R20 in the shared kernel: the shapes of rate limits and dimension rules (the
 * catalog stores them, the entitlements module merges and checks them, the usage engine
 * enforces them) and the fixed-window arithmetic every one of them must agree on.
 */

export type RateWindow = 'SECOND' | 'MINUTE' | 'HOUR';

/** At most `limit` units per fixed window (R19). */
export interface RateLimit {
  limit: Micros;
  window: RateWindow;
}

/** A request's `properties[key]` must be one of `values` (R20). */
export interface DimensionRule {
  key: string;
  values: string[];
}

export const WINDOW_MS: Record<RateWindow, number> = { SECOND: 1_000, MINUTE: 60_000, HOUR: 3_600_000 };

/** The fixed UTC window containing `at`: [start, end). */
export function windowAt(window: RateWindow, at: Date): { start: Date; end: Date } {
  const size = WINDOW_MS[window];
  const start = Math.floor(at.getTime() / size) * size;
  return { start: new Date(start), end: new Date(start + size) };
}

/** The window document's id: one per (account, feature, window size, window start). */
export function rateWindowId(accountId: string, feature: string, window: RateWindow, start: Date): string {
  return `${accountId}|${feature}|${window}|${start.getTime()}`;
}

/**
 * Whether `properties` satisfy every rule of at least one rule set (R20). A rule holds
 * when the property is a string listed in its values; a missing or non-string property
 * fails it. `sets` null means unrestricted.
 */
export function dimensionsAllowed(sets: readonly (readonly DimensionRule[])[] | null | undefined, properties: unknown): boolean {
  if (!sets || sets.length === 0) return true;
  const props =
    typeof properties === 'object' && properties !== null && !Array.isArray(properties) ? (properties as Record<string, unknown>) : {};
  return sets.some((rules) =>
    rules.every((rule) => {
      const value = Object.hasOwn(props, rule.key) ? props[rule.key] : undefined;
      return typeof value === 'string' && rule.values.includes(value);
    }),
  );
}

/** A rate limit as GraphQL shows it (exact decimal limit); null when none. */
export function rateLimitView(limit: RateLimit | null | undefined): { limit: string; window: RateWindow } | null {
  return limit ? { limit: formatQuantity(limit.limit), window: limit.window } : null;
}
