/**
 * The usage line of a tiered price (R15): kind OVERAGE, quantity = the billable units (beyond
 * the included amount and the grants), no single unit price, and the charge of each tier
 * reached in `tiers`. Grants never show as a CREDIT line here: tiers start at the first
 * billable unit, so the description names what the grants covered instead.
 */
import { Money } from '../../shared/money.js';
import { formatQuantity } from '../../shared/quantity.js';
import { formatAmount } from './currency.js';
import { groupDigits } from './lines.js';
import type { InvoiceLineTier, InvoiceLineView } from './model.js';
import type { GrantBurn, OveragePrice, UsageFigures } from './overage.js';
import type { TierAmount } from './tiers.js';

export interface TieredLineInput {
  /** Id, feature, periods and the other fields shared with every usage line. */
  line: Omit<InvoiceLineView, 'kind' | 'description' | 'quantity' | 'unitPrice' | 'amount' | 'tiers'>;
  /** "API calls" or "API calls (usage period from …)". */
  title: string;
  price: OveragePrice;
  figures: UsageFigures;
  grantBurn: readonly GrantBurn[];
  currency: string;
}

export function tieredUsageLine({ line, title, price, figures, grantBurn, currency }: TieredLineInput): InvoiceLineView {
  const units = (micros: bigint) => groupDigits(formatQuantity(micros));
  const covered = grantBurn
    .filter((burn) => burn.units > 0n)
    .map((burn) => (burn.kind ? `${burn.reason ?? burn.grantId} (${burn.kind.toLowerCase()})` : (burn.reason ?? burn.grantId)));
  const grants = figures.coveredByGrants > 0n ? `, ${units(figures.coveredByGrants)} covered by ${covered.join(', ')}` : '';
  const tiers = (figures.tiers ?? []).map((tier) => lineTier(tier, currency));
  const breakdown = tiers.length === 0 ? 'no tier reached' : tiers.map((tier) => tierText(tier, currency)).join('; ');
  return {
    ...line,
    kind: 'OVERAGE',
    description:
      `${title} overage: ${units(figures.beyondIncluded)} beyond ${units(figures.coveredByIncluded)} included${grants}, ` +
      `${groupDigits(figures.netBlocks.toFixed())} billable${price.rounding === 'UP' ? ' (rounded up)' : ''}, ${price.model?.toLowerCase()} tiers: ${breakdown}`,
    quantity: figures.netBlocks.toFixed(),
    unitPrice: null,
    amount: formatAmount(figures.amount, currency),
    tiers,
  };
}

function lineTier(tier: TierAmount, currency: string): InvoiceLineTier {
  return {
    tier: tier.tier,
    from: tier.from.toFixed(),
    upTo: tier.upTo?.toFixed() ?? null,
    units: tier.units.toFixed(),
    unitPrice: formatAmount(tier.unitPrice, currency),
    flatFee: formatAmount(tier.flatFee, currency),
    amount: formatAmount(tier.amount, currency),
  };
}

/** "tier 2 (5 to 10): 5 × 6.50 USD = 32.50 USD", with "+ 10.00 flat" when the tier has a fee. */
function tierText(tier: InvoiceLineTier, currency: string): string {
  const range = tier.upTo === null ? `above ${groupDigits(tier.from)}` : `${groupDigits(tier.from)} to ${groupDigits(tier.upTo)}`;
  const flat = new Money(tier.flatFee).isZero() ? '' : ` + ${tier.flatFee} flat`;
  return `tier ${tier.tier} (${range}): ${groupDigits(tier.units)} × ${tier.unitPrice}${flat} = ${tier.amount} ${currency}`;
}
