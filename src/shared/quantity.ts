import { BadInputError } from './errors.js';

/**
 * Quantities are stored and added as integer micro-units (1 unit = 1,000,000 micro-units)
 * in BSON Int64, carried in JS as bigint. That gives exact sums (0.1 + 0.2 = 0.3),
 * atomic `$inc` in MongoDB, and `$expr` comparisons for HARD limits, with no floats.
 */
export type Micros = bigint;

export const MICROS_PER_UNIT = 1_000_000n;
export const QUANTITY_SCALE = 6;

/** Largest quantity one usage event may carry: 1e9 units keeps counters far below 2^63. */
export const MAX_EVENT_UNITS = 1_000_000_000n;
/** Largest included amount, grant or grace: 1e12 units. */
export const MAX_TERM_UNITS = 1_000_000_000_000n;

const QUANTITY_PATTERN = /^(-?)(\d{1,19})(?:\.(\d{1,6}))?$/;

export interface QuantityRules {
  /** Field name used in error messages, e.g. "quantity" or "included". */
  field: string;
  /** Whether 0 is acceptable (a usage event must be positive; an included amount may be 0). */
  allowZero?: boolean;
  /** Upper bound in whole units. */
  maxUnits?: bigint;
}

/** Parses a decimal string into micro-units, refusing anything that is not exact. */
export function parseQuantity(text: string, { field, allowZero = false, maxUnits = MAX_TERM_UNITS }: QuantityRules): Micros {
  const trimmed = String(text).trim();
  const match = QUANTITY_PATTERN.exec(trimmed);
  if (!match) {
    const tooPrecise = /^-?\d+\.\d{7,}$/.test(trimmed);
    throw new BadInputError(
      tooPrecise
        ? `${field} "${trimmed}" has more than ${QUANTITY_SCALE} fractional digits; round it to at most 6.`
        : `${field} "${trimmed.slice(0, 40)}" is not a decimal quantity such as "12" or "0.5".`,
      { field },
    );
  }
  const [, sign, whole = '0', fraction = ''] = match;
  const micros = BigInt(whole) * MICROS_PER_UNIT + BigInt(fraction.padEnd(QUANTITY_SCALE, '0'));
  if (sign === '-' && micros !== 0n) throw new BadInputError(`${field} must not be negative; got "${trimmed}".`, { field });
  if (micros === 0n && !allowZero) throw new BadInputError(`${field} must be greater than zero.`, { field });
  if (micros > maxUnits * MICROS_PER_UNIT) {
    throw new BadInputError(`${field} "${trimmed}" exceeds the maximum of ${maxUnits} units.`, { field });
  }
  return micros;
}

/** Formats micro-units as the shortest exact decimal string ("1.5", "0.000001", "-2"). */
export function formatQuantity(micros: Micros): string {
  const negative = micros < 0n;
  const abs = negative ? -micros : micros;
  const whole = abs / MICROS_PER_UNIT;
  const fraction = (abs % MICROS_PER_UNIT).toString().padStart(QUANTITY_SCALE, '0').replace(/0+$/, '');
  return `${negative ? '-' : ''}${whole}${fraction ? `.${fraction}` : ''}`;
}

export function units(whole: number | bigint): Micros {
  return BigInt(whole) * MICROS_PER_UNIT;
}

export const minMicros = (a: Micros, b: Micros): Micros => (a < b ? a : b);
export const maxMicros = (a: Micros, b: Micros): Micros => (a > b ? a : b);

/** Values read from MongoDB may come back as number for small Int64s on some servers. */
export function toMicros(value: unknown): Micros {
  if (typeof value === 'bigint') return value;
  if (typeof value === 'number' && Number.isSafeInteger(value)) return BigInt(value);
  if (value === null || value === undefined) return 0n;
  if (typeof value === 'object' && 'toBigInt' in (value as object)) return (value as { toBigInt(): bigint }).toBigInt();
  throw new TypeError(`not an Int64 micro-unit value: ${String(value)}`);
}
