/**
 * Rates one billing period of one contract (R12) from already-loaded facts: the prorated
 * base fees and, per metered feature and usage period, the terms, the usage counted and
 * the grants' burn. Pure, so every table is unit-tested without a database.
 *
 * Money: every line amount is exact (blocks × unitPrice, or the fee) except a prorated
 * base fee, which is on the minor unit (base-fee.ts). `total` is the exact sum of the
 * lines and `amountDue` is that total rounded half-even to the currency's minor unit;
 * nothing else is rounded. So 5,000,001 rows at $0.40 per 1,000 EXACT is a $0.0004 line
 * and a $2,000.0004 total, due as $2,000.00.
 */
import { Money } from '../../shared/money.js';
import { formatQuantity, type Micros } from '../../shared/quantity.js';
import type { Period } from '../../shared/periods.js';
import type { BaseFeeCharge, BilledPeriod } from './base-fee.js';
import { formatAmount, roundToMinor } from './currency.js';
import { baseFeeSubject, day, groupDigits, lineId, seconds, usageSubject } from './lines.js';
import type { InvoiceLineView, RatedUsage } from './model.js';
import { rateUsage, type GrantBurn, type UsageFigures, type UsageTerms } from './overage.js';

/** One usage period of one metered feature, with everything needed to rate it. */
export interface UsagePeriodInput {
  feature: string;
  featureName: string;
  unit: string | null;
  counterId: string;
  period: Period;
  terms: UsageTerms;
  granted: Micros;
  used: Micros;
  grantBurn: GrantBurn[];
}

export interface RatingInput {
  contractId: string;
  currency: string;
  period: BilledPeriod;
  baseFees: readonly BaseFeeCharge[];
  usage: readonly UsagePeriodInput[];
}

export interface RatedInvoice {
  lines: InvoiceLineView[];
  usage: RatedUsage[];
  total: string;
  amountDue: string;
}

export function rateInvoice(input: RatingInput): RatedInvoice {
  const { contractId, currency, period } = input;
  const money = (amount: Money) => formatAmount(amount, currency);
  const lines: InvoiceLineView[] = [];

  for (const fee of input.baseFees) {
    const plan = `${fee.planName} (${fee.planKey} v${fee.planVersion})`;
    const span = `${day(fee.start)} to ${day(fee.end)}`;
    lines.push({
      id: lineId(contractId, period.start, 'BASE_FEE', baseFeeSubject(fee.planKey, fee.planVersion, fee.start)),
      kind: 'BASE_FEE',
      feature: null,
      description: fee.prorated
        ? `${plan} base fee, ${span}: prorated ${seconds(fee.segmentMs)} of ${seconds(fee.periodMs)} seconds of ${money(new Money(fee.fee))} ${currency}`
        : `${plan} base fee, ${span}`,
      quantity: fee.share.toFixed(),
      unitPrice: money(new Money(fee.fee)),
      amount: money(fee.amount),
      periodStart: fee.start,
      periodEnd: fee.end,
      planKey: fee.planKey,
      planVersion: fee.planVersion,
      prorated: fee.prorated,
    });
  }

  const usage: RatedUsage[] = [];
  const ordered = [...input.usage].sort((a, b) => (a.feature < b.feature ? -1 : a.feature > b.feature ? 1 : a.period.start.getTime() - b.period.start.getTime()));
  for (const entry of ordered) {
    const figures = rateUsage(entry.terms, entry.used, entry.grantBurn);
    usage.push(toRatedUsage(entry, figures, currency));
    lines.push(...usageLines(contractId, period, currency, entry, figures));
  }

  const total = lines.reduce((sum, line) => sum.plus(line.amount), new Money(0));
  return { lines, usage, total: money(total), amountDue: money(roundToMinor(total, currency)) };
}

function toRatedUsage(entry: UsagePeriodInput, figures: UsageFigures, currency: string): RatedUsage {
  const price = entry.terms.price;
  return {
    feature: entry.feature,
    featureName: entry.featureName,
    unit: entry.unit,
    counterId: entry.counterId,
    periodStart: entry.period.start,
    periodEnd: entry.period.end,
    included: entry.terms.included,
    granted: entry.granted,
    used: figures.used,
    coveredByIncluded: figures.coveredByIncluded,
    coveredByGrants: figures.coveredByGrants,
    overage: figures.overage,
    grantBurn: entry.grantBurn.filter((burn) => burn.units > 0n),
    price: price ? { ...price, unitPrice: formatAmount(new Money(price.unitPrice), currency) } : null,
    grossBlocks: figures.grossBlocks.toFixed(),
    netBlocks: figures.netBlocks.toFixed(),
    amount: formatAmount(figures.amount, currency),
  };
}

/** OVERAGE for every unit beyond the included amount, CREDIT for the blocks grants covered. */
function usageLines(contractId: string, billing: BilledPeriod, currency: string, entry: UsagePeriodInput, figures: UsageFigures): InvoiceLineView[] {
  const price = entry.terms.price;
  if (!price || figures.beyondIncluded === 0n) return [];
  const money = (amount: Money) => formatAmount(amount, currency);
  const subject = usageSubject(entry.feature, entry.period.start);
  const blockSize = groupDigits(formatQuantity(price.per));
  const rounding = price.rounding === 'UP' ? 'rounded up' : 'pro rata';
  const within = entry.period.start.getTime() === billing.start.getTime() ? '' : ` (usage period from ${day(entry.period.start)})`;
  const common = {
    feature: entry.feature,
    periodStart: entry.period.start,
    periodEnd: entry.period.end,
    planKey: null,
    planVersion: null,
    prorated: false,
  };
  const lines: InvoiceLineView[] = [
    {
      ...common,
      id: lineId(contractId, billing.start, 'OVERAGE', subject),
      kind: 'OVERAGE',
      description:
        `${entry.featureName} overage${within}: ${groupDigits(formatQuantity(figures.beyondIncluded))} beyond ` +
        `${groupDigits(formatQuantity(figures.coveredByIncluded))} included, ${groupDigits(figures.grossBlocks.toFixed())} × ${blockSize} ` +
        `(${rounding}) at ${money(new Money(price.unitPrice))} ${currency}`,
      quantity: figures.grossBlocks.toFixed(),
      unitPrice: money(new Money(price.unitPrice)),
      amount: money(figures.overageAmount),
    },
  ];
  if (!figures.creditedBlocks.isZero()) {
    const grants = entry.grantBurn.filter((burn) => burn.units > 0n).map((burn) => (burn.kind ? `${burn.grantId} ${burn.kind}` : burn.grantId));
    lines.push({
      ...common,
      id: lineId(contractId, billing.start, 'CREDIT', subject),
      kind: 'CREDIT',
      description:
        `${entry.featureName} credit${within}: ${groupDigits(formatQuantity(figures.coveredByGrants))} covered by credit grants ` +
        `(${grants.join(', ')}), ${groupDigits(figures.creditedBlocks.toFixed())} × ${blockSize} at ${money(new Money(price.unitPrice))} ${currency}`,
      quantity: figures.creditedBlocks.toFixed(),
      unitPrice: money(new Money(price.unitPrice).negated()),
      amount: money(figures.creditAmount),
    });
  }
  return lines;
}
