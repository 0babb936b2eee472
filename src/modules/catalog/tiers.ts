/**
 * Tiered overage prices (R15): validation at the edge, the pure lookups other modules need
 * (the tier a level falls in, the price R4 compares), and reading tiers back from storage.
 * Tiers follow Stripe's tiered prices: a tier holds the units up to and including its
 * `upTo`, the next one starts just above it, and the last has no bound (docs/pricing.md).
 */
import { BadInputError } from '../../shared/errors.js';
import { minorDigits } from '../../shared/minor-units.js';
import { Money, parseMoney } from '../../shared/money.js';
import { MICROS_PER_UNIT, formatQuantity, parseQuantity, toMicros, type Micros } from '../../shared/quantity.js';
import type { OverageTerms, PriceTier, PricingModel } from './model.js';

export const MAX_TIERS = 50;
/** Tier prices are per unit: a tiered price's block (`per`) is always one unit. */
export const ONE_UNIT: Micros = MICROS_PER_UNIT;

export interface PriceTierInputShape {
  upTo?: string | null;
  unitPrice: string;
  flatFee?: string | null;
}

/**
 * Tiers as given: ascending `upTo`, no zero-width tier, exactly one unbounded tier and it is
 * the last, prices ≥ 0, flat fees on the currency's minor unit (when the currency is known
 * here; overrides check it against the contract's plan with assertOverageCurrency).
 */
export function parseTiers(input: readonly PriceTierInputShape[], model: PricingModel, field: string, currency?: string): PriceTier[] {
  if (input.length === 0 || input.length > MAX_TIERS) {
    throw new BadInputError(`${field} must list 1-${MAX_TIERS} tiers for a ${model} price; got ${input.length}.`, { field });
  }
  let previous = 0n;
  const tiers = input.map((tier, index): PriceTier => {
    const at = `${field}[${index}]`;
    const last = index === input.length - 1;
    if (tier.upTo == null) {
      if (!last) {
        throw new BadInputError(
          `${at}.upTo is missing, but only the last tier may be unbounded: give it an upper bound, or move it last.`,
          {
            field: `${at}.upTo`,
          },
        );
      }
    } else if (last) {
      throw new BadInputError(`${at}.upTo must be omitted (null): the last tier has no upper bound, so every unit falls in a tier.`, {
        field: `${at}.upTo`,
      });
    }
    const upTo = tier.upTo == null ? null : parseQuantity(tier.upTo, { field: `${at}.upTo` });
    if (upTo !== null && upTo <= previous) {
      throw new BadInputError(
        `${at}.upTo ${formatQuantity(upTo)} must be greater than the previous tier's ${formatQuantity(previous)}: tiers are ascending and none is empty.`,
        { field: `${at}.upTo` },
      );
    }
    if (upTo !== null) previous = upTo;
    const flatFee = parseMoney(tier.flatFee ?? '0', `${at}.flatFee`);
    if (currency) assertOnMinorUnit(flatFee, currency, `${at}.flatFee`);
    return { upTo, unitPrice: parseMoney(tier.unitPrice, `${at}.unitPrice`).toFixed(), flatFee: flatFee.toFixed() };
  });
  if (tiers.every((tier) => new Money(tier.unitPrice).isZero() && new Money(tier.flatFee).isZero())) {
    throw new BadInputError(`${field} prices nothing (every unitPrice and flatFee is 0); omit overage to leave overage unpriced.`, {
      field,
    });
  }
  return tiers;
}

/** A fee must be payable: no fraction of the currency's minor unit ("0.005" USD is refused). */
export function assertOnMinorUnit(amount: Money, currency: string, field: string): void {
  const digits = minorDigits(currency);
  if (amount.decimalPlaces() > digits) {
    throw new BadInputError(
      `${field} "${amount.toFixed()}" has more fractional digits than ${currency}'s minor unit allows (${digits}); round it to ${digits}.`,
      { field },
    );
  }
}

/** Overrides are parsed before the contract is read: their flat fees are checked against its currency here. */
export function assertOverageCurrency(overage: OverageTerms | null | undefined, currency: string, field: string): void {
  overage?.tiers?.forEach((tier, index) => {
    assertOnMinorUnit(new Money(tier.flatFee), currency, `${field}.tiers[${index}].flatFee`);
  });
}

export function isTiered(
  overage: Pick<OverageTerms, 'model' | 'tiers'>,
): overage is OverageTerms & Required<Pick<OverageTerms, 'model' | 'tiers'>> {
  return (overage.model === 'GRADUATED' || overage.model === 'VOLUME') && (overage.tiers?.length ?? 0) > 0;
}

/** The tier that holds the unit ending at `level` (micro-units > 0): the first whose upTo ≥ level. */
export function tierIndexAt(tiers: readonly PriceTier[], level: Micros): number {
  const index = tiers.findIndex((tier) => tier.upTo === null || level <= tier.upTo);
  return index === -1 ? tiers.length - 1 : index;
}

/**
 * The marginal price of the next billable unit once `billable` units are billable
 * (Entitlement.overagePrice): unitPrice ÷ per for PER_UNIT; with tiers, the unit price of
 * the tier the next unit falls in (GRADUATED), or the tier the total would then be in
 * (VOLUME): for both, the tier holding the level just above `billable`.
 */
export function marginalUnitPrice(overage: OverageTerms, billable: Micros): Money {
  if (!isTiered(overage)) return new Money(overage.unitPrice).div(new Money(formatQuantity(overage.per)));
  return new Money(overage.tiers[tierIndexAt(overage.tiers, billable + 1n)]!.unitPrice);
}

/**
 * How R4 compares overage prices (the merge keeps the lowest): unitPrice ÷ per for PER_UNIT;
 * with tiers, what the first billable unit costs: the first tier's unit price plus its flat
 * fee. It does not depend on usage, so the choice is fixed for an instant whatever is used.
 */
export function overageComparisonPrice(overage: OverageTerms): Money {
  if (!isTiered(overage)) return new Money(overage.unitPrice).div(new Money(formatQuantity(overage.per)));
  const first = overage.tiers[0]!;
  return new Money(first.unitPrice).plus(first.flatFee);
}

/** Stored Int64s come back as bigint (useBigInt64); be strict at the boundary anyway. */
export function overageFromStored<T extends OverageTerms>(overage: T): T {
  return {
    ...overage,
    per: toMicros(overage.per),
    ...(overage.tiers ? { tiers: overage.tiers.map((tier) => ({ ...tier, upTo: tier.upTo === null ? null : toMicros(tier.upTo) })) } : {}),
  };
}
