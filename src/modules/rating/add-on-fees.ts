/**
 * ADD_ON lines (R17): one per add-on segment billed in the period, the add-on's price per
 * unit of quantity, prorated like the base fee (base-fee.ts): price × quantity × (the
 * segment's billed milliseconds in the period ÷ the period's milliseconds), counting only
 * the time the contract is billed: not before it starts, not after its billing end, not
 * while CANCELED, and not during its trial (R18). A segment covering the whole period
 * charges price × quantity exactly; prorated amounts are split into minor units together
 * (allocateMinorUnits), so they add up to their rounded exact sum. The line's quantity is
 * units × share of the period, its unit price the add-on's price.
 */
import { Money } from '../../shared/money.js';
import { type ContractDoc, billingEnd } from '../contracts/index.js';
import { type BilledPeriod, subtract, unbilledIntervals } from './base-fee.js';
import { allocateMinorUnits, formatAmount, fromMinorUnits } from './currency.js';
import { day, days, lineId } from './lines.js';
import type { InvoiceLineView } from './model.js';

export interface AddOnCharge {
  key: string;
  version: number;
  name: string;
  /** Exact money string per unit and whole period. */
  price: string;
  quantity: number;
  start: Date;
  end: Date;
  prorated: boolean;
  /** units × share of the period, exact to 6 digits (the line's quantity). */
  units: Money;
  amount: Money;
  segmentMs: number;
  periodMs: number;
}

/** The features of every add-on segment that overlaps the period (they are rated like the plan's). */
export function addOnFeaturesIn(contract: ContractDoc, period: BilledPeriod): string[] {
  return (contract.addOns ?? [])
    .filter((segment) => segment.effectiveAt < period.end && (segment.endsAt === null || segment.endsAt > period.start))
    .flatMap((segment) => segment.addOn.entitlements.map((terms) => terms.feature));
}

export function addOnCharges(contract: ContractDoc, period: BilledPeriod, currency: string): AddOnCharge[] {
  const lifeStart = contract.startsAt.getTime();
  const lifeEnd = billingEnd(contract)?.getTime() ?? Infinity;
  const holes = unbilledIntervals(contract);
  const periodMs = period.end.getTime() - period.start.getTime();
  const pieces: Array<Omit<AddOnCharge, 'prorated' | 'units' | 'amount' | 'segmentMs' | 'periodMs'>> = [];
  for (const segment of contract.addOns ?? []) {
    const { addOn } = segment;
    if (addOn.price === null || new Money(addOn.price).isZero()) continue;
    const start = Math.max(segment.effectiveAt.getTime(), period.start.getTime(), lifeStart);
    const end = Math.min(segment.endsAt?.getTime() ?? Infinity, period.end.getTime(), lifeEnd);
    if (end <= start) continue;
    for (const [from, to] of subtract(start, end, holes)) {
      pieces.push({
        key: addOn.key,
        version: addOn.version,
        name: addOn.name,
        price: addOn.price,
        quantity: segment.quantity,
        start: new Date(from),
        end: new Date(to),
      });
    }
  }
  const whole = (piece: { start: Date; end: Date }) =>
    piece.start.getTime() === period.start.getTime() && piece.end.getTime() === period.end.getTime();
  const exact = pieces.map((piece) =>
    new Money(piece.price)
      .times(piece.quantity)
      .times(piece.end.getTime() - piece.start.getTime())
      .div(periodMs),
  );
  const partial = pieces.flatMap((piece, i) => (whole(piece) ? [] : [i]));
  const minor = allocateMinorUnits(
    partial.map((i) => exact[i]!),
    currency,
  );
  return pieces.map((piece, i) => {
    const segmentMs = piece.end.getTime() - piece.start.getTime();
    const prorated = !whole(piece);
    return {
      ...piece,
      prorated,
      units: new Money(piece.quantity).times(segmentMs).div(periodMs).toDecimalPlaces(6, Money.ROUND_HALF_EVEN),
      amount: prorated ? fromMinorUnits(minor[partial.indexOf(i)]!, currency) : new Money(piece.price).times(piece.quantity),
      segmentMs,
      periodMs,
    };
  });
}

export function addOnLines(contractId: string, period: BilledPeriod, currency: string, charges: readonly AddOnCharge[]): InvoiceLineView[] {
  const money = (amount: Money) => formatAmount(amount, currency);
  return charges.map((charge) => {
    const name = `${charge.name} add-on (${charge.key} v${charge.version}) × ${charge.quantity}`;
    const span = `${day(charge.start)} to ${day(charge.end)}`;
    return {
      id: lineId(contractId, period.start, 'ADD_ON', `${charge.key}@${charge.version}@${charge.start.toISOString()}`),
      kind: 'ADD_ON',
      feature: null,
      description: charge.prorated
        ? `${name}, ${span}: prorated ${days(charge.segmentMs)} of ${days(charge.periodMs)} days of ${money(new Money(charge.price))} ${currency} each`
        : `${name}, ${span}: ${money(new Money(charge.price))} ${currency} each`,
      quantity: charge.units.toFixed(),
      unitPrice: money(new Money(charge.price)),
      amount: money(charge.amount),
      periodStart: charge.start,
      periodEnd: charge.end,
      planKey: null,
      planVersion: null,
      prorated: charge.prorated,
    };
  });
}

/** The ADD_ON lines of one billing period of the contract. */
export function addOnInvoiceLines(contract: ContractDoc, period: BilledPeriod, currency: string): InvoiceLineView[] {
  return addOnLines(contract._id, period, currency, addOnCharges(contract, period, currency));
}
