/**
 * Counter keys: the vocabulary every module uses to name a usage period of one
 * (account, feature). The usage module owns the counters; entitlements, grants, alerts
 * and rating name them with these functions and ask the usage module for their values.
 */

/** One counter per (account, feature, period start). */
export function counterId(accountId: string, feature: string, periodStart: Date): string {
  return `${accountId}|${feature}|${periodStart.toISOString()}`;
}

/** "2026013113" for 2026-01-31T13:xx UTC: sortable, and free of "." and "$" (a field name). */
export function hourKey(at: Date): string {
  return at.toISOString().slice(0, 13).replace(/[-T]/g, '');
}

/** The instant an hourKey() bucket starts. */
export function hourStart(key: string): Date {
  return new Date(`${key.slice(0, 4)}-${key.slice(4, 6)}-${key.slice(6, 8)}T${key.slice(8, 10)}:00:00.000Z`);
}

/**
 * A pool member's field name in its pool counter's `members` map (R13): base64url, so it
 * is free of "." and "$" whatever the account id holds, and reversible (memberOfKey).
 */
export function memberKey(accountId: string): string {
  return Buffer.from(accountId, 'utf8').toString('base64url');
}

export function memberOfKey(key: string): string {
  return Buffer.from(key, 'base64url').toString('utf8');
}

/**
 * A GAUGE's one level document per (account, feature) (R16): the level carries over
 * between periods, so it is not keyed by one. Its peaks per period live inside it.
 */
export function gaugeLevelId(accountId: string, feature: string): string {
  return `${accountId}|${feature}|level`;
}

/** A period's field name in a gauge level document's `peaks` and `levels` maps: "p" + epoch ms. */
export function periodKey(periodStart: Date): string {
  return `p${periodStart.getTime()}`;
}
