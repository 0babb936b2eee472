/**
 * Minor units and the one rounding this module does: half-even (banker's rounding) to the
 * currency's minor unit. Amounts are decimal.js values (shared/money.ts); nothing here
 * touches a JS number.
 */
import { Decimal } from 'decimal.js';
import { Money } from '../../shared/money.js';
import { minorDigits } from '../../shared/minor-units.js';

export { minorDigits };

/** Half-even rounding to the minor unit, e.g. 2000.0004 USD → 2000.00. */
export function roundToMinor(amount: Money, currency: string): Money {
  return amount.toDecimalPlaces(minorDigits(currency), Decimal.ROUND_HALF_EVEN);
}

/**
 * An amount as an exact string with at least the currency's minor digits, so tables read
 * "900.20" rather than "900.2", and sub-cent amounts keep every digit ("0.0004").
 */
export function formatAmount(amount: Money, currency: string): string {
  const value = amount.isZero() ? new Money(0) : amount; // no "-0.00"
  return value.toFixed(Math.max(value.decimalPlaces(), minorDigits(currency)));
}

/** The amount in minor units (cents for USD), which must already be on the minor unit. */
export function toMinorUnits(amount: Money, currency: string): bigint {
  const scaled = amount.times(new Money(10).pow(minorDigits(currency)));
  if (!scaled.isInteger()) throw new Error(`${amount.toFixed()} ${currency} is not on the minor unit`);
  return BigInt(scaled.toFixed(0));
}

export function fromMinorUnits(minor: bigint, currency: string): Money {
  return new Money(minor.toString()).div(new Money(10).pow(minorDigits(currency)));
}

/**
 * Splits exact amounts into minor units so that the parts add up to the half-even rounded
 * sum, each part within one minor unit of its exact amount (largest remainder): every
 * amount is floored, and the minor units still missing go one each to the amounts with the
 * largest remainders, earlier amounts first on a tie. Rounding each amount on its own
 * instead can drift: three thirds of 100.00 would round to 99.99.
 */
export function allocateMinorUnits(amounts: readonly Money[], currency: string): bigint[] {
  const scale = new Money(10).pow(minorDigits(currency));
  const scaled = amounts.map((amount) => amount.times(scale));
  const floors = scaled.map((value) => value.floor());
  const target = scaled.reduce((sum, value) => sum.plus(value), new Money(0)).toDecimalPlaces(0, Decimal.ROUND_HALF_EVEN);
  let missing = BigInt(target.minus(floors.reduce((sum, value) => sum.plus(value), new Money(0))).toFixed(0));
  const parts = floors.map((value) => BigInt(value.toFixed(0)));
  const byRemainder = scaled
    .map((value, index) => ({ index, remainder: value.minus(floors[index]!) }))
    .filter(({ remainder }) => !remainder.isZero())
    .sort((a, b) => b.remainder.comparedTo(a.remainder) || a.index - b.index);
  for (const { index } of byRemainder) {
    if (missing <= 0n) break;
    parts[index]! += 1n;
    missing -= 1n;
  }
  return parts;
}
