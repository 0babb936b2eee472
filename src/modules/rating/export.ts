/**
 * The billing export: an invoice's lines as a billing system (Stripe, Chargebee, NetSuite)
 * takes them, each in integer minor units, with the line id as its idempotency key.
 *
 * Exact line amounts (0.0004 USD) cannot be charged as such, so the minor units are
 * allocated across the lines (currency.ts, largest remainder): they add up to exactly
 * `amountDue`, the half-even rounded total, and each is within one minor unit of its exact
 * amount. `unitAmountDecimal` is the unit price in minor units (cents), the form Stripe's
 * `unit_amount_decimal` takes; when `unitPricingExact` is true, quantity × unitAmountDecimal
 * is exactly `amountMinor`, so quantity and unit price may be sent instead of the amount.
 */
import { Money } from '../../shared/money.js';
import { allocateMinorUnits, minorDigits, toMinorUnits } from './currency.js';
import type { InvoiceLineView, InvoiceView } from './model.js';

/** Stripe takes at most 12 decimal places in unit_amount_decimal. */
const UNIT_AMOUNT_MAX_DECIMALS = 12;

export interface BillingLineView extends InvoiceLineView {
  /** Same as `id`: send it as the idempotency key, and keep it in metadata. */
  idempotencyKey: string;
  accountId: string;
  contractId: string;
  currency: string;
  amountMinor: bigint;
  unitAmountDecimal: string | null;
  unitPricingExact: boolean;
  metadata: Record<string, string>;
}

export interface BillingExportView {
  invoice: InvoiceView;
  amountDueMinor: bigint;
  lines: BillingLineView[];
}

export function toBillingExport(invoice: InvoiceView): BillingExportView {
  const { currency } = invoice;
  const minor = allocateMinorUnits(
    invoice.lines.map((line) => new Money(line.amount)),
    currency,
  );
  const scale = new Money(10).pow(minorDigits(currency));
  const lines = invoice.lines.map((line, i): BillingLineView => {
    const unitAmount = line.unitPrice === null ? null : new Money(line.unitPrice).times(scale);
    const quantity = new Money(line.quantity);
    const unitPricingExact =
      unitAmount !== null &&
      quantity.isInteger() &&
      unitAmount.decimalPlaces() <= UNIT_AMOUNT_MAX_DECIMALS &&
      quantity.times(unitAmount).equals(new Money(minor[i]!.toString()));
    return {
      ...line,
      idempotencyKey: line.id,
      accountId: invoice.accountId,
      contractId: invoice.contractId,
      currency,
      amountMinor: minor[i]!,
      unitAmountDecimal: unitAmount?.toFixed() ?? null,
      unitPricingExact,
      metadata: {
        allotment_line_id: line.id,
        allotment_contract_id: invoice.contractId,
        allotment_period_start: invoice.periodStart.toISOString(),
        allotment_kind: line.kind,
        ...(line.feature ? { allotment_feature: line.feature } : {}),
      },
    };
  });
  return { invoice, amountDueMinor: toMinorUnits(new Money(invoice.amountDue), currency), lines };
}
