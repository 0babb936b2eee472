import type { UsageEventCommand, UsageEventDoc } from './model.js';

/**
 * The event's `_id`, unique per account for the whole retention period (R7). The
 * timestamp is deliberately not part of it. JSON framing keeps (account, key) pairs
 * unambiguous whatever characters an account id contains.
 */
export function eventId(accountId: string, idempotencyKey: string): string {
  return JSON.stringify([accountId, idempotencyKey]);
}

/**
 * What "the same payload" means for R7: feature, exact quantity, the timestamp when the
 * client sent one, and the properties (key order ignored). Comparing against the stored
 * event needs no stored hash, because the event stores exactly these fields.
 */
export function payloadSignature(
  event: Pick<UsageEventCommand, 'feature' | 'quantity' | 'clientTimestamp' | 'timestamp' | 'properties' | 'set'>,
): string {
  const signature: unknown[] = [
    event.feature,
    event.quantity.toString(),
    event.clientTimestamp ? event.timestamp.toISOString() : null,
    event.properties ?? null,
  ];
  // setUsage (R16) and a delta of the same number are different payloads.
  if (event.set) signature.push('SET');
  return canonicalJson(signature);
}

export function samePayload(command: UsageEventCommand, stored: UsageEventDoc): boolean {
  return payloadSignature(command) === payloadSignature(stored);
}

/** JSON with object keys sorted at every level, so equal values have equal text. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (value instanceof Date) return JSON.stringify(value.toISOString());
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, inner]) => inner !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([key, inner]) => `${JSON.stringify(key)}:${canonicalJson(inner)}`).join(',')}}`;
}
