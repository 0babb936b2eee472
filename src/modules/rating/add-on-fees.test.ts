/**
 * ADD_ON charges (R17) and trial time (R18), rated by the pure functions: hand-computed
 * tables, and the property that prorated add-on lines never drift from their exact sum.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Money } from '../../shared/money.js';
import type { AddOnVersionDoc } from '../catalog/index.js';
import type { AddOnSegment, ContractDoc } from '../contracts/index.js';
import { addOnCharges, addOnInvoiceLines } from './add-on-fees.js';
import { baseFeeSegments, type BilledPeriod } from './base-fee.js';
import { roundToMinor } from './currency.js';
import { plan } from './rate-fixtures.js';

const DAY = 86_400_000;
// November 2026: 30 days.
const NOVEMBER: BilledPeriod = { start: new Date('2026-11-01T00:00:00Z'), end: new Date('2026-12-01T00:00:00Z') };
const at = (day: number) => new Date(NOVEMBER.start.getTime() + day * DAY);

const BOOST: AddOnVersionDoc = {
  _id: 'boost@1',
  key: 'boost',
  version: 1,
  name: 'Boost',
  currency: 'USD',
  price: '50',
  billingPeriod: 'MONTH',
  entitlements: [],
  publishedAt: NOVEMBER.start,
  publishedBy: 'test',
};

function contract(addOns: AddOnSegment[], changes: Partial<ContractDoc> = {}): ContractDoc {
  return {
    _id: 'ctr',
    accountId: 'acct',
    planKey: 'growth',
    planVersion: 1,
    planHistory: [{ planKey: 'growth', planVersion: 1, effectiveAt: new Date('2026-10-01T00:00:00Z') }],
    status: 'ACTIVE',
    startsAt: new Date('2026-10-01T00:00:00Z'),
    endsAt: null,
    billingAnchor: new Date('2026-10-01T00:00:00Z'),
    addOns,
    createdAt: NOVEMBER.start,
    updatedAt: NOVEMBER.start,
    ...changes,
  };
}

describe('ADD_ON lines', () => {
  it('charges price × quantity for a whole period and prorates a mid-period attach by days', () => {
    const whole = addOnCharges(contract([{ addOn: BOOST, quantity: 2, effectiveAt: at(-10), endsAt: null }]), NOVEMBER, 'USD');
    expect(whole.map((c) => [c.units.toFixed(), c.amount.toFixed(2), c.prorated])).toEqual([['2', '100.00', false]]);
    const half = addOnCharges(contract([{ addOn: BOOST, quantity: 2, effectiveAt: at(15), endsAt: null }]), NOVEMBER, 'USD');
    expect(half.map((c) => [c.units.toFixed(), c.amount.toFixed(2), c.prorated])).toEqual([['1', '50.00', true]]);
  });

  it('charges nothing for trial time, nor after a cancellation', () => {
    const trialing = contract([{ addOn: BOOST, quantity: 1, effectiveAt: at(-10), endsAt: null }], {
      statusHistory: [
        { status: 'TRIALING', at: new Date('2026-10-01T00:00:00Z') },
        { status: 'ACTIVE', at: at(10) },
      ],
      trialEndsAt: at(10),
    });
    // 20 of 30 days of 50 = 33.33; the base fee, likewise, starts at the trial's end.
    expect(addOnCharges(trialing, NOVEMBER, 'USD').map((c) => [c.start.toISOString(), c.amount.toFixed(2)])).toEqual([
      ['2026-11-11T00:00:00.000Z', '33.33'],
    ]);
    const fees = baseFeeSegments(trialing, new Map([['growth@1', plan('growth', 1, '300')]]), NOVEMBER);
    expect(fees.map((fee) => fee.start.toISOString())).toEqual(['2026-11-11T00:00:00.000Z']);
    const canceled = contract([{ addOn: BOOST, quantity: 1, effectiveAt: at(-10), endsAt: null }], {
      status: 'CANCELED',
      statusHistory: [
        { status: 'ACTIVE', at: new Date('2026-10-01T00:00:00Z') },
        { status: 'CANCELED', at: at(6) },
      ],
      canceledAt: at(6),
    });
    expect(addOnCharges(canceled, NOVEMBER, 'USD').map((c) => c.amount.toFixed(2))).toEqual(['10.00']);
  });

  it('gives each line a stable id and a description in days', () => {
    const doc = contract([{ addOn: BOOST, quantity: 3, effectiveAt: at(15), endsAt: null }]);
    const [line] = addOnInvoiceLines(doc, NOVEMBER, 'USD');
    expect(line).toMatchObject({ kind: 'ADD_ON', quantity: '1.5', unitPrice: '50.00', amount: '75.00', prorated: true });
    expect(line!.description).toBe('Boost add-on (boost v1) × 3, 2026-11-16 to 2026-12-01: prorated 15 of 30 days of 50.00 USD each');
    expect(addOnInvoiceLines(doc, NOVEMBER, 'USD')[0]!.id).toBe(line!.id);
  });

  it('property: prorated lines add up to their exact sum rounded to the cent', () => {
    const segmentArb = fc.record({
      quantity: fc.integer({ min: 1, max: 20 }),
      from: fc.integer({ min: 0, max: 29 * 24 }),
      hours: fc.integer({ min: 1, max: 30 * 24 }),
      price: fc.constantFrom('50', '9.99', '0.01', '1234.56', '33.33'),
    });
    fc.assert(
      fc.property(fc.array(segmentArb, { minLength: 1, maxLength: 6 }), (specs) => {
        const segments = specs.map(
          (spec, i): AddOnSegment => ({
            addOn: { ...BOOST, _id: `a${i}@1`, key: `a${i}`, price: spec.price },
            quantity: spec.quantity,
            effectiveAt: new Date(NOVEMBER.start.getTime() + spec.from * 3_600_000),
            endsAt: new Date(NOVEMBER.start.getTime() + (spec.from + spec.hours) * 3_600_000),
          }),
        );
        const charges = addOnCharges(contract(segments), NOVEMBER, 'USD');
        const periodMs = NOVEMBER.end.getTime() - NOVEMBER.start.getTime();
        const exact = charges.reduce(
          (sum, c) =>
            sum.plus(
              new Money(c.price)
                .times(c.quantity)
                .times(c.end.getTime() - c.start.getTime())
                .div(periodMs),
            ),
          new Money(0),
        );
        const billed = charges.reduce((sum, c) => sum.plus(c.amount), new Money(0));
        expect(billed.toFixed(2)).toBe(roundToMinor(exact, 'USD').toFixed(2));
        for (const c of charges) expect(c.end.getTime()).toBeLessThanOrEqual(NOVEMBER.end.getTime());
      }),
    );
  });
});
