/**
 * Validation of rate limits (R19) and dimension rules (R20) on plan entitlements and
 * contract overrides. Sizes are bounded: the rules travel with every terms resolution.
 */
import { BadInputError } from '../../shared/errors.js';
import { MAX_TERM_UNITS, parseQuantity } from '../../shared/quantity.js';
import type { DimensionRule, RateLimit, RateWindow } from '../../shared/rate-window.js';
import type { FeatureType } from './model.js';

export const MAX_DIMENSION_RULES = 10;
export const MAX_DIMENSION_VALUES = 100;
const MAX_DIMENSION_KEY = 64;
const MAX_DIMENSION_VALUE = 128;
const WINDOWS: ReadonlySet<string> = new Set<RateWindow>(['SECOND', 'MINUTE', 'HOUR']);
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

export interface RateLimitInputShape {
  limit: string;
  window: RateWindow;
}

export interface DimensionRuleInputShape {
  key: string;
  values: readonly string[];
}

/** A positive exact limit per SECOND, MINUTE or HOUR; METERED features only. */
export function parseRateLimit(input: RateLimitInputShape, type: FeatureType, field: string): RateLimit {
  if (type !== 'METERED') {
    throw new BadInputError(`${field} applies to METERED features only: usage of a BOOLEAN feature is never counted. Remove it.`, {
      field,
    });
  }
  if (!WINDOWS.has(input.window)) throw new BadInputError(`${field}.window must be SECOND, MINUTE or HOUR.`, { field: `${field}.window` });
  return { limit: parseQuantity(input.limit, { field: `${field}.limit`, maxUnits: MAX_TERM_UNITS }), window: input.window };
}

/** Rules with a non-empty key each, non-empty distinct values, no key twice; bounded sizes. */
export function parseAllowRules(input: readonly DimensionRuleInputShape[], field: string): DimensionRule[] | null {
  if (input.length === 0) return null;
  if (input.length > MAX_DIMENSION_RULES) {
    throw new BadInputError(`${field} may hold at most ${MAX_DIMENSION_RULES} rules; got ${input.length}.`, { field });
  }
  const keys = new Set<string>();
  return input.map((rule, index) => {
    const where = `${field}[${index}]`;
    const key = rule.key;
    if (typeof key !== 'string' || key.length === 0 || key.length > MAX_DIMENSION_KEY) {
      throw new BadInputError(`${where}.key must be 1-${MAX_DIMENSION_KEY} characters.`, { field: `${where}.key` });
    }
    if (key.startsWith('$') || key.includes('.') || CONTROL_CHARS.test(key)) {
      throw new BadInputError(`${where}.key "${key}" must not start with "$" or contain "." or control characters, like property keys.`, {
        field: `${where}.key`,
      });
    }
    if (keys.has(key)) throw new BadInputError(`${where}.key "${key}" appears twice; give each key one rule.`, { field: `${where}.key` });
    keys.add(key);
    if (rule.values.length === 0 || rule.values.length > MAX_DIMENSION_VALUES) {
      throw new BadInputError(`${where}.values must list 1-${MAX_DIMENSION_VALUES} allowed values; got ${rule.values.length}.`, {
        field: `${where}.values`,
      });
    }
    const values = new Set<string>();
    for (const value of rule.values) {
      if (value.length === 0 || value.length > MAX_DIMENSION_VALUE || CONTROL_CHARS.test(value)) {
        throw new BadInputError(`${where}.values must be 1-${MAX_DIMENSION_VALUE} printable characters each.`, {
          field: `${where}.values`,
        });
      }
      if (values.has(value)) {
        throw new BadInputError(`${where}.values lists "${value}" twice.`, { field: `${where}.values` });
      }
      values.add(value);
    }
    return { key, values: [...values] };
  });
}
