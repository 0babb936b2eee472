/**
 * Rates one billing period of one contract (R12) from already-loaded facts: the prorated
 * base fees and, per metered feature and usage period, the terms, the usage counted and
 * the grants' burn. Pure, so every table is unit-tested without a database.
 *
 * Money: every line amount is exact (blocks × unitPrice, or the fee) except a prorated
 * base fee, which is on the minor unit (base-fee.ts). `exactTotal` is the exact sum of the
 * lines; `total` and `amountDue` are that sum rounded half-even to the currency's minor
 * unit; nothing else is rounded. So 5,000,001 rows at $0.40 per 1,000 EXACT is a $0.0004
 * line, an exact total of $2,000.0004, and a total (and amount due) of $2,000.00.
 *
 * Lines: the base fee of each plan pin; then, per metered feature, one OVERAGE line per
 * usage period with usage (amount 0 while within the included amount, or when overage is
 * not priced), or a single zero line for a feature with no usage at all, so every metered
 * feature is on the invoice; a CREDIT line where grants covered overage, named by the
 * grants' reasons; and, for a feature shared with another contract that rates its usage
 * (ownership.ts), a zero line saying which.
 */
import { Money } from '../../shared/money.js';
import { formatQuantity, type Micros } from '../../shared/quantity.js';
import type { Period } from '../../shared/periods.js';
import type { BaseFeeCharge, BilledPeriod } from './base-fee.js';
import { formatAmount, roundToMinor } from './currency.js';
import { baseFeeSubject, day, days, groupDigits, lineId, usageSubject } from './lines.js';
import type { InvoiceLineView, RatedUsage } from './model.js';
import { rateUsage, type GrantBurn, type UsageFigures, type UsageTerms } from './overage.js';
import type { TopUpCharge } from './sources.js';
import { topUpLines } from './top-ups.js';
import { isTiered } from '../catalog/index.js';
import { tieredUsageLine } from './tiered-line.js';
import { minimumCommitLine } from './minimum-commit.js';

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
  /** R14: priced top-ups of this feature issued in the usage period. */
  topUps?: readonly TopUpCharge[];
}

/** A metered feature of the contract whose usage another contract's invoice rates (shared, R4). */
export interface RatedElsewhere {
  feature: string;
  featureName: string;
  /** The last usage period of the billing period. */
  period: Period;
  ownerId: string;
}

export interface RatingInput {
  contractId: string;
  currency: string;
  period: BilledPeriod;
  baseFees: readonly BaseFeeCharge[];
  /** R17: the ADD_ON lines (add-on-fees.ts), listed after the base fees. */
  addOnLines?: readonly InvoiceLineView[];
  usage: readonly UsagePeriodInput[];
  /** Zero lines pointing at the invoice that rates a shared feature. */
  ratedElsewhere?: readonly RatedElsewhere[];
  /** R15: each plan pin's prorated minimum commit in the period (minimum-commit.ts). */
  minimumCommits?: readonly BaseFeeCharge[];
}

export interface RatedInvoice {
  lines: InvoiceLineView[];
  usage: RatedUsage[];
  /** The lines' exact sum, rounded half-even to the minor unit. */
  total: string;
  /** The lines' exact sum. */
  exactTotal: string;
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
        ? `${plan} base fee, ${span}: prorated ${days(fee.segmentMs)} of ${days(fee.periodMs)} days of ${money(new Money(fee.fee))} ${currency}`
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

  lines.push(...(input.addOnLines ?? []));

  const usage: RatedUsage[] = [];
  const ordered = [...input.usage].sort((a, b) =>
    a.feature < b.feature ? -1 : a.feature > b.feature ? 1 : a.period.start.getTime() - b.period.start.getTime(),
  );
  ordered.forEach((entry, i) => {
    const figures = rateUsage(entry.terms, entry.used, entry.grantBurn);
    usage.push(toRatedUsage(entry, figures, currency));
    // Every usage period with usage has a line; a feature without any usage has one, on its last.
    const lastOfFeature = ordered[i + 1]?.feature !== entry.feature;
    const featureUsed = ordered.some((other) => other.feature === entry.feature && other.used > 0n);
    if (entry.used > 0n || (lastOfFeature && !featureUsed)) lines.push(...usageLines(contractId, period, currency, entry, figures));
    lines.push(...topUpLines(contractId, period, currency, entry));
  });

  for (const shared of [...(input.ratedElsewhere ?? [])].sort((a, b) => (a.feature < b.feature ? -1 : a.feature > b.feature ? 1 : 0))) {
    lines.push({
      id: lineId(contractId, period.start, 'OVERAGE', usageSubject(shared.feature, shared.period.start)),
      kind: 'OVERAGE',
      feature: shared.feature,
      description: `${shared.featureName}: shared with contract ${shared.ownerId}, whose invoice rates this usage`,
      quantity: '0',
      unitPrice: null,
      amount: money(new Money(0)),
      periodStart: shared.period.start,
      periodEnd: shared.period.end,
      planKey: null,
      planVersion: null,
      prorated: false,
    });
  }

  const floor = minimumCommitLine(contractId, period, currency, input.minimumCommits ?? [], lines);
  if (floor) lines.push(floor);

  const exact = lines.reduce((sum, line) => sum.plus(line.amount), new Money(0));
  const rounded = money(roundToMinor(exact, currency));
  return { lines, usage, total: rounded, exactTotal: money(exact), amountDue: rounded };
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

/**
 * The usage line (kind OVERAGE): every unit beyond the included amount, or zero blocks while
 * within it or when overage is not priced; and a CREDIT line for the blocks grants covered.
 */
function usageLines(
  contractId: string,
  billing: BilledPeriod,
  currency: string,
  entry: UsagePeriodInput,
  figures: UsageFigures,
): InvoiceLineView[] {
  const price = entry.terms.price;
  const money = (amount: Money) => formatAmount(amount, currency);
  const subject = usageSubject(entry.feature, entry.period.start);
  const within = entry.period.start.getTime() === billing.start.getTime() ? '' : ` (usage period from ${day(entry.period.start)})`;
  const units = (micros: bigint) => groupDigits(formatQuantity(micros));
  const included = entry.terms.included === null ? 'unlimited' : units(entry.terms.included);
  if (!price || figures.beyondIncluded === 0n) {
    const status =
      figures.beyondIncluded === 0n
        ? `${units(figures.used)} used, within ${included} included`
        : `${units(figures.used)} used, ${units(figures.beyondIncluded)} beyond ${included} included; overage is not priced`;
    return [
      {
        id: lineId(contractId, billing.start, 'OVERAGE', subject),
        kind: 'OVERAGE',
        feature: entry.feature,
        description: `${entry.featureName}${within}: ${status}`,
        quantity: '0',
        unitPrice: price && !isTiered(price) ? money(new Money(price.unitPrice)) : null,
        amount: money(new Money(0)),
        periodStart: entry.period.start,
        periodEnd: entry.period.end,
        planKey: null,
        planVersion: null,
        prorated: false,
      },
    ];
  }
  if (isTiered(price)) {
    const line = { id: lineId(contractId, billing.start, 'OVERAGE', subject), feature: entry.feature, periodStart: entry.period.start };
    const rest = { periodEnd: entry.period.end, planKey: null, planVersion: null, prorated: false };
    const title = `${entry.featureName}${within}`;
    return [tieredUsageLine({ line: { ...line, ...rest }, title, price, figures, grantBurn: entry.grantBurn, currency })];
  }
  const blockSize = groupDigits(formatQuantity(price.per));
  const rounding = price.rounding === 'UP' ? 'rounded up' : 'pro rata';
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
    // Named by the grants' reasons (what finance issued them for), the kind alongside.
    const grants = entry.grantBurn
      .filter((burn) => burn.units > 0n)
      .map((burn) => {
        const name = burn.reason ?? burn.grantId;
        return burn.kind ? `${name} (${burn.kind.toLowerCase()})` : name;
      });
    lines.push({
      ...common,
      id: lineId(contractId, billing.start, 'CREDIT', subject),
      kind: 'CREDIT',
      description:
        `${entry.featureName} credit${within}: ${groupDigits(formatQuantity(figures.coveredByGrants))} covered by ${grants.join(', ')}, ` +
        `${groupDigits(figures.creditedBlocks.toFixed())} × ${blockSize} at ${money(new Money(price.unitPrice))} ${currency}`,
      quantity: figures.creditedBlocks.toFixed(),
      unitPrice: money(new Money(price.unitPrice).negated()),
      amount: money(figures.creditAmount),
    });
  }
  return lines;
}
