/**
 * TOP_UP lines (R14): each priced auto top-up of a credit feature issued in a usage period
 * is one line at its price, exact. The credits it bought are a PREPAID grant: the usage
 * they cover is credited on the feature's CREDIT line when overage is priced, so a top-up
 * is paid once, here.
 */
import { Money } from '../../shared/money.js';
import { formatQuantity } from '../../shared/quantity.js';
import type { BilledPeriod } from './base-fee.js';
import { formatAmount } from './currency.js';
import { day, groupDigits, lineId } from './lines.js';
import type { InvoiceLineView } from './model.js';
import type { Period } from '../../shared/periods.js';
import type { TopUpCharge } from './sources.js';

/** The usage period a top-up was issued in, with its feature (rate.ts's UsagePeriodInput fits). */
export interface TopUpPeriod {
  feature: string;
  featureName: string;
  unit: string | null;
  period: Period;
  topUps?: readonly TopUpCharge[];
}

export function topUpLines(contractId: string, billing: BilledPeriod, currency: string, entry: TopUpPeriod): InvoiceLineView[] {
  return [...(entry.topUps ?? [])]
    .sort((a, b) => a.issuedAt.getTime() - b.issuedAt.getTime())
    .map((topUp) => {
      const price = formatAmount(new Money(topUp.price), currency);
      return {
        id: lineId(contractId, billing.start, 'TOP_UP', topUp.grantId),
        kind: 'TOP_UP',
        feature: entry.feature,
        description: `${entry.featureName} auto top-up on ${day(topUp.issuedAt)}: ${groupDigits(formatQuantity(topUp.amount))} ${entry.unit ?? 'units'}`,
        quantity: '1',
        unitPrice: price,
        amount: price,
        periodStart: entry.period.start,
        periodEnd: entry.period.end,
        planKey: null,
        planVersion: null,
        prorated: false,
      };
    });
}
