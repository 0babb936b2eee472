import { Decimal } from 'decimal.js';
import { BadInputError } from './errors.js';

/**
 * Money is exact decimal arithmetic (decimal.js with 60 significant digits, far beyond any
 * invoice), stored and sent as strings. Amounts are never converted to JS numbers.
 */
export const Money = Decimal.clone({ precision: 60, rounding: Decimal.ROUND_HALF_EVEN, toExpNeg: -40, toExpPos: 60 });
export type Money = InstanceType<typeof Money>;

const MONEY_PATTERN = /^\d{1,15}(\.\d{1,12})?$/;

/** Parses a non-negative price or fee ("0.20", "2000") into an exact Money value. */
export function parseMoney(text: string, field: string): Money {
  const trimmed = String(text).trim();
  if (!MONEY_PATTERN.test(trimmed)) {
    throw new BadInputError(
      `${field} "${trimmed.slice(0, 40)}" must be a non-negative decimal amount such as "0.20" (at most 12 fractional digits).`,
      { field },
    );
  }
  return new Money(trimmed);
}

/** Canonical string form: no exponent, no trailing zeros beyond what the value needs. */
export function formatMoney(value: Money): string {
  return value.toFixed();
}

/** Rounds to the currency's minor unit for invoice totals (half-even, banker's rounding). */
export function toMinorUnits(value: Money, fractionDigits = 2): string {
  return value.toFixed(fractionDigits, Decimal.ROUND_HALF_EVEN);
}

const CURRENCY_PATTERN = /^[A-Z]{3}$/;
export function parseCurrency(text: string): string {
  if (!CURRENCY_PATTERN.test(text))
    throw new BadInputError(`currency "${text}" must be an ISO 4217 code such as "USD".`, { field: 'currency' });
  return text;
}
