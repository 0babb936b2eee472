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
import type { UsagePeriodInput } from './rate.js';

export function topUpLines(contractId: string, billing: BilledPeriod, currency: string, entry: UsagePeriodInput): InvoiceLineView[] {
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
