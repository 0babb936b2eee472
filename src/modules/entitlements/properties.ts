import { BadInputError } from '../../shared/errors.js';

/** A check's `properties` (R20): a flat JSON object of string values, bounded. */
const MAX_KEYS = 50;
const MAX_BYTES = 8 * 1024;

export function parseCheckProperties(value: unknown, field: string): Record<string, string> | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new BadInputError(`${field} must be a JSON object of string values, e.g. {"region": "eu"}.`, { field });
  }
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length > MAX_KEYS) throw new BadInputError(`${field} may hold at most ${MAX_KEYS} keys; got ${entries.length}.`, { field });
  for (const [key, inner] of entries) {
    if (key.length === 0 || key.startsWith('$') || key.includes('.')) {
      throw new BadInputError(`${field} has the key "${key.slice(0, 60)}": keys must not be empty, start with "$" or contain ".".`, {
        field,
      });
    }
    if (typeof inner !== 'string') {
      throw new BadInputError(`${field}.${key.slice(0, 60)} must be a string: dimension rules compare string values.`, { field });
    }
  }
  const size = Buffer.byteLength(JSON.stringify(value), 'utf8');
  if (size > MAX_BYTES) throw new BadInputError(`${field} is ${size} bytes of JSON; the maximum is ${MAX_BYTES}.`, { field });
  return value as Record<string, string>;
}
