/**
 * Rating one usage period of one metered feature (R12), as a pure function of its terms
 * and what was counted: no I/O, so the hand-computed tables are unit-tested directly.
 *
 * Usage burns the included amount first, then credit grants (R5); what neither covers is
 * overage. Overage is billed in blocks of `per` units at `unitPrice` a block:
 * - UP: blocks = ceil(units ÷ per), a whole number;
 * - EXACT: blocks = units ÷ per, exact; when the division does not terminate (per = 3)
 *   it is rounded half-even to BLOCK_SCALE (12) fractional digits, far below any minor unit.
 * The amount is blocks × unitPrice, exact (no rounding to cents here).
 *
 * Tiered prices (R15, tiers.ts) apply to the billable units only, those the included amount
 * and the grants left: gross and net blocks are both those units, and there is no credit.
 *
 * Grants show as a credit: the OVERAGE line bills every unit beyond the included amount
 * (grossBlocks), and the CREDIT line takes back the blocks the grants covered
 * (grossBlocks − netBlocks). The two lines add up to exactly netBlocks × unitPrice, the
 * charge for the units nothing covered, whatever the rounding.
 */
import { Money } from '../../shared/money.js';
import { maxMicros, minMicros, type Micros } from '../../shared/quantity.js';
import { isTiered, type PriceTier, type PricingModel, type Rounding } from '../catalog/index.js';
import { priceTiers, type TierAmount } from './tiers.js';

export const BLOCK_SCALE = 12;
const BLOCK_FACTOR = 10n ** BigInt(BLOCK_SCALE);

export interface OveragePrice {
  /** Exact money string: the price of one block. */
  unitPrice: string;
  /** Block size in micro-units. */
  per: Micros;
  rounding: Rounding;
  /** R15: GRADUATED or VOLUME with tiers (per is then one unit); absent for PER_UNIT. */
  model?: Exclude<PricingModel, 'PER_UNIT'>;
  tiers?: PriceTier[];
}

export interface UsageTerms {
  /** Null: unlimited, nothing is ever overage. */
  included: Micros | null;
  /** Null: overage is not priced (HARD without price, NONE, …): counted, never billed. */
  price: OveragePrice | null;
}

/** Units of one usage period that one credit grant covered (the grants module's burn, R5). */
export interface GrantBurn {
  grantId: string;
  /** PROMOTIONAL or PREPAID, for the credit line's description. */
  kind?: string;
  /** The reason the grant was issued with: the credit line is named by it. */
  reason?: string;
  units: Micros;
}

export interface UsageFigures {
  used: Micros;
  coveredByIncluded: Micros;
  /** Units beyond the included amount, before grants. */
  beyondIncluded: Micros;
  coveredByGrants: Micros;
  /** Units nothing covered: the billable overage. */
  overage: Micros;
  grossBlocks: Money;
  netBlocks: Money;
  /** grossBlocks − netBlocks. */
  creditedBlocks: Money;
  /** grossBlocks × unitPrice. */
  overageAmount: Money;
  /** −creditedBlocks × unitPrice (zero or negative). */
  creditAmount: Money;
  /** overageAmount + creditAmount = netBlocks × unitPrice. */
  amount: Money;
  /** R15, tiered prices only: each tier's part of the billable units (tiers.ts). */
  tiers?: TierAmount[];
}

/** Blocks of `per` for `units`: a ceiling for UP; exact (or 12-digit half-even) for EXACT. */
export function blocksOf(units: Micros, price: Pick<OveragePrice, 'per' | 'rounding'>): Money {
  if (units <= 0n) return new Money(0);
  if (price.rounding === 'UP') return new Money(((units + price.per - 1n) / price.per).toString());
  const scaled = units * BLOCK_FACTOR;
  let quotient = scaled / price.per;
  const twiceRemainder = 2n * (scaled % price.per);
  if (twiceRemainder > price.per || (twiceRemainder === price.per && quotient % 2n === 1n)) quotient += 1n;
  return new Money(quotient.toString()).div(BLOCK_FACTOR.toString());
}

/**
 * The figures of one usage period. `grantBurn` is what the grants module says each grant
 * covered of this period's usage; it never covers more than lies beyond the included amount.
 */
export function rateUsage(terms: UsageTerms, used: Micros, grantBurn: readonly GrantBurn[]): UsageFigures {
  const coveredByIncluded = terms.included === null ? used : minMicros(used, terms.included);
  const beyondIncluded = used - coveredByIncluded;
  const burned = grantBurn.reduce((sum, burn) => sum + maxMicros(0n, burn.units), 0n);
  const coveredByGrants = minMicros(burned, beyondIncluded);
  const overage = beyondIncluded - coveredByGrants;
  const zero = new Money(0);
  if (!terms.price) {
    return {
      used,
      coveredByIncluded,
      beyondIncluded,
      coveredByGrants,
      overage,
      grossBlocks: zero,
      netBlocks: zero,
      creditedBlocks: zero,
      overageAmount: zero,
      creditAmount: zero,
      amount: zero,
    };
  }
  if (isTiered(terms.price)) {
    // Tiers apply to the billable units (R15): grants reduce them first, so no CREDIT line.
    const quantity = blocksOf(overage, terms.price);
    const charge = priceTiers(terms.price.model, terms.price.tiers, quantity);
    return {
      ...{ used, coveredByIncluded, beyondIncluded, coveredByGrants, overage },
      ...{ grossBlocks: quantity, netBlocks: quantity, creditedBlocks: zero },
      ...{ overageAmount: charge.amount, creditAmount: zero, amount: charge.amount, tiers: charge.tiers },
    };
  }
  const unitPrice = new Money(terms.price.unitPrice);
  const grossBlocks = blocksOf(beyondIncluded, terms.price);
  const netBlocks = blocksOf(overage, terms.price);
  const creditedBlocks = grossBlocks.minus(netBlocks);
  const overageAmount = grossBlocks.times(unitPrice);
  const creditAmount = creditedBlocks.isZero() ? zero : creditedBlocks.times(unitPrice).negated();
  return {
    used,
    coveredByIncluded,
    beyondIncluded,
    coveredByGrants,
    overage,
    grossBlocks,
    netBlocks,
    creditedBlocks,
    overageAmount,
    creditAmount,
    amount: overageAmount.plus(creditAmount),
  };
}
