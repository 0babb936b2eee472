/**
 * Tiered prices (R15), as Stripe prices them, over a period's billable units (beyond the
 * included amount and the grants). A tier holds the units up to and including its `upTo`.
 * - GRADUATED: each tier's units at that tier's unit price, plus the flat fee of every tier
 *   the units reach.
 * - VOLUME: every unit at the unit price of the one tier the total falls in, plus that
 *   tier's flat fee.
 * Zero billable units reach no tier: no flat fee is charged, as in Stripe, where a tier's
 * flat amount is billed only when the quantity falls in it (docs/pricing.md).
 * Exact: nothing is rounded here; the invoice rounds its total only.
 */
import { Money } from '../../shared/money.js';
import { formatQuantity } from '../../shared/quantity.js';
import type { PriceTier, PricingModel } from '../catalog/index.js';

/** One tier's part of a tiered charge; `from` is the previous tier's upTo (0 for the first). */
export interface TierAmount {
  /** 1-based, in the price's order. */
  tier: number;
  from: Money;
  upTo: Money | null;
  units: Money;
  unitPrice: Money;
  flatFee: Money;
  /** units × unitPrice + flatFee. */
  amount: Money;
}

export interface TieredCharge {
  amount: Money;
  /** The tiers reached, in order: every one up to the last reached (GRADUATED), or the one (VOLUME). */
  tiers: TierAmount[];
}

/** `quantity` is in units (a whole number when rounded UP, exact otherwise), never negative. */
export function priceTiers(model: Exclude<PricingModel, 'PER_UNIT'>, tiers: readonly PriceTier[], quantity: Money): TieredCharge {
  const zero = new Money(0);
  if (quantity.lessThanOrEqualTo(0)) return { amount: zero, tiers: [] };
  const bounds = tiers.map((tier, index) => ({
    tier: index + 1,
    from: index === 0 ? zero : new Money(formatQuantity(tiers[index - 1]!.upTo ?? 0n)),
    upTo: tier.upTo === null ? null : new Money(formatQuantity(tier.upTo)),
    unitPrice: new Money(tier.unitPrice),
    flatFee: new Money(tier.flatFee),
  }));
  const charged: TierAmount[] = [];
  if (model === 'VOLUME') {
    const found = bounds.find((tier) => tier.upTo === null || quantity.lessThanOrEqualTo(tier.upTo)) ?? bounds.at(-1)!;
    charged.push({ ...found, units: quantity, amount: quantity.times(found.unitPrice).plus(found.flatFee) });
  } else {
    for (const tier of bounds) {
      if (quantity.lessThanOrEqualTo(tier.from)) break;
      const top = tier.upTo === null ? quantity : Money.min(quantity, tier.upTo);
      const units = top.minus(tier.from);
      charged.push({ ...tier, units, amount: units.times(tier.unitPrice).plus(tier.flatFee) });
    }
  }
  return { amount: charged.reduce((sum, tier) => sum.plus(tier.amount), zero), tiers: charged };
}
