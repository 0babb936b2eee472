/**
 * Tiered prices (R15) by hand-computed tables, rated by the pure functions with no database.
 *
 * The reference tables are Stripe's own, "Set up tiered pricing"
 * (https://docs.stripe.com/subscriptions/pricing-models/tiered-pricing): Typographic's font
 * tiers 1-5 at 7 USD, 6-10 at 6.50 USD, 11+ at 6 USD. Its volume-based table
 * (quantity → total: 1 → 7, 5 → 35, 6 → 39, 20 → 120, 25 → 150 USD) is reproduced as
 * documented; the graduated table follows the documented rule ("the quantity is
 * multiplied by the amount for each tier and the totals for each tier are summed"):
 * 1 → 7, 5 → 35, 6 → 35 + 6.50 = 41.50, 20 → 35 + 32.50 + 60 = 127.50,
 * 25 → 35 + 32.50 + 90 = 157.50 USD.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Money } from '../../shared/money.js';
import type { PriceTier } from '../catalog/index.js';
import type { OveragePrice } from './overage.js';
import { rateInvoice } from './rate.js';
import { MARCH, q, summary, usage } from './rate-fixtures.js';
import { priceTiers } from './tiers.js';

const TYPOGRAPHIC: PriceTier[] = [
  { upTo: q('5'), unitPrice: '7', flatFee: '0' },
  { upTo: q('10'), unitPrice: '6.5', flatFee: '0' },
  { upTo: null, unitPrice: '6', flatFee: '0' },
];
const total = (model: 'GRADUATED' | 'VOLUME', tiers: PriceTier[], units: string) =>
  priceTiers(model, tiers, new Money(units)).amount.toFixed(2);

describe("Stripe's documented tables (Typographic: 1-5 at 7 USD, 6-10 at 6.50 USD, 11+ at 6 USD)", () => {
  it.each([
    ['1', '7.00'],
    ['5', '35.00'],
    ['6', '39.00'],
    ['20', '120.00'],
    ['25', '150.00'],
  ])('VOLUME: %s fonts cost %s USD, every font at the tier the total falls in', (fonts, expected) => {
    expect(total('VOLUME', TYPOGRAPHIC, fonts)).toBe(expected);
  });

  it.each([
    ['1', '7.00'],
    ['5', '35.00'],
    ['6', '41.50'],
    ['20', '127.50'],
    ['25', '157.50'],
  ])('GRADUATED: %s fonts cost %s USD, each tier its own fonts', (fonts, expected) => {
    expect(total('GRADUATED', TYPOGRAPHIC, fonts)).toBe(expected);
  });

  it('breaks 20 graduated fonts down into the three tiers: 5 × 7 + 5 × 6.50 + 10 × 6', () => {
    const charge = priceTiers('GRADUATED', TYPOGRAPHIC, new Money(20));
    expect(
      charge.tiers.map((tier) => [
        tier.tier,
        tier.from.toFixed(),
        tier.upTo?.toFixed() ?? null,
        tier.units.toFixed(),
        tier.amount.toFixed(),
      ]),
    ).toEqual([
      [1, '0', '5', '5', '35'],
      [2, '5', '10', '5', '32.5'],
      [3, '10', null, '10', '60'],
    ]);
  });

  it('prices 20 volume fonts in one tier, the third', () => {
    const charge = priceTiers('VOLUME', TYPOGRAPHIC, new Money(20));
    expect(charge.tiers.map((tier) => [tier.tier, tier.units.toFixed(), tier.unitPrice.toFixed(), tier.amount.toFixed()])).toEqual([
      [3, '20', '6', '120'],
    ]);
  });
});

describe('flat fees (hand-computed): up to 1,000 units for a 200 flat fee, then 0.05 a unit plus 50 on reaching 1,001+', () => {
  const tiers: PriceTier[] = [
    { upTo: q('1000'), unitPrice: '0', flatFee: '200' },
    { upTo: null, unitPrice: '0.05', flatFee: '50' },
  ];

  it.each([
    // units, graduated, volume
    ['0', '0.00', '0.00'], // no unit billable: no tier reached, no flat fee (as in Stripe)
    ['1', '200.00', '200.00'],
    ['1000', '200.00', '200.00'],
    ['1001', '250.05', '100.05'], // G: 200 + (0.05 + 50); V: 1,001 × 0.05 + 50
    ['3000', '350.00', '200.00'], // G: 200 + 2,000 × 0.05 + 50; V: 3,000 × 0.05 + 50
  ])('%s units: GRADUATED %s, VOLUME %s', (units, graduated, volume) => {
    expect(total('GRADUATED', tiers, units)).toBe(graduated);
    expect(total('VOLUME', tiers, units)).toBe(volume);
  });

  it('reaches no tier at zero units, so lists none', () => {
    expect(priceTiers('GRADUATED', tiers, new Money(0)).tiers).toEqual([]);
    expect(priceTiers('VOLUME', tiers, new Money(0)).tiers).toEqual([]);
  });
});

describe('a tiered price on an invoice: tiers apply to the units beyond the included amount and the grants', () => {
  const tiered = (model: 'GRADUATED' | 'VOLUME', rounding: 'UP' | 'EXACT' = 'EXACT'): OveragePrice => ({
    unitPrice: '7',
    per: q('1'),
    rounding,
    model,
    tiers: TYPOGRAPHIC,
  });
  const rate = (used: string, price: OveragePrice, grants: Array<[string, string]> = []) =>
    rateInvoice({
      contractId: 'ctr_test',
      currency: 'USD',
      period: MARCH,
      baseFees: [],
      usage: [usage('fonts', MARCH, { included: q('100'), price }, used, grants)],
    });

  it('bills 1,220 fonts with 100 included and a 100-font grant as 20 billable graduated fonts, 127.50, with no credit line', () => {
    const invoice = rate('220', tiered('GRADUATED'), [['grant_a', '100']]);
    expect(summary(invoice.lines)).toEqual([['OVERAGE', '20', null, '127.50']]);
    const [line] = invoice.lines;
    expect(line!.tiers).toEqual([
      { tier: 1, from: '0', upTo: '5', units: '5', unitPrice: '7.00', flatFee: '0.00', amount: '35.00' },
      { tier: 2, from: '5', upTo: '10', units: '5', unitPrice: '6.50', flatFee: '0.00', amount: '32.50' },
      { tier: 3, from: '10', upTo: null, units: '10', unitPrice: '6.00', flatFee: '0.00', amount: '60.00' },
    ]);
    expect(line!.description).toBe(
      'fonts overage: 120 beyond 100 included, 100 covered by Reason of grant_a, 20 billable, graduated tiers: ' +
        'tier 1 (0 to 5): 5 × 7.00 = 35.00 USD; tier 2 (5 to 10): 5 × 6.50 = 32.50 USD; tier 3 (above 10): 10 × 6.00 = 60.00 USD',
    );
    expect(invoice.usage[0]).toMatchObject({ overage: q('20'), grossBlocks: '20', netBlocks: '20', amount: '127.50' });
    expect(invoice.total).toBe('127.50');
  });

  it('bills the same 20 billable fonts VOLUME as 120.00, in the third tier only', () => {
    const invoice = rate('220', tiered('VOLUME'), [['grant_a', '100']]);
    expect(summary(invoice.lines)).toEqual([['OVERAGE', '20', null, '120.00']]);
    expect(invoice.lines[0]!.tiers).toEqual([
      { tier: 3, from: '10', upTo: null, units: '20', unitPrice: '6.00', flatFee: '0.00', amount: '120.00' },
    ]);
  });

  it('charges nothing, and no flat fee, while usage stays within the included amount and the grants', () => {
    const flat: OveragePrice = { ...tiered('GRADUATED'), tiers: [{ upTo: null, unitPrice: '1', flatFee: '25' }] };
    expect(summary(rate('80', flat).lines)).toEqual([['OVERAGE', '0', null, '0.00']]);
    const covered = rate('150', flat, [['grant_a', '50']]);
    expect(summary(covered.lines)).toEqual([['OVERAGE', '0', null, '0.00']]);
    expect(covered.lines[0]!.tiers).toEqual([]);
  });

  it('bills 5.5 billable fonts pro rata when EXACT (35 + 0.5 × 6.50 = 38.25) and as 6 when rounded UP (41.50)', () => {
    expect(summary(rate('105.5', tiered('GRADUATED')).lines)).toEqual([['OVERAGE', '5.5', null, '38.25']]);
    expect(summary(rate('105.5', tiered('GRADUATED', 'UP')).lines)).toEqual([['OVERAGE', '6', null, '41.50']]);
  });
});

describe('properties of tiered charges', () => {
  // Ascending bounds in whole micro-units, prices with up to 4 decimals, flat fees in cents.
  const tiersArb = fc
    .array(
      fc.record({
        width: fc.integer({ min: 1, max: 5_000_000_000 }),
        unitPrice: fc.integer({ min: 0, max: 100_000 }),
        flatCents: fc.integer({ min: 0, max: 50_000 }),
      }),
      { minLength: 1, maxLength: 6 },
    )
    .map((specs) => {
      let bound = 0n;
      return specs.map((spec, index): PriceTier => {
        bound += BigInt(spec.width);
        return {
          upTo: index === specs.length - 1 ? null : bound,
          unitPrice: new Money(spec.unitPrice).div(10_000).toFixed(),
          flatFee: new Money(spec.flatCents).div(100).toFixed(),
        };
      });
    });
  const unitsArb = fc.bigInt({ min: 0n, max: 40_000_000_000n }).map((micros) => new Money(micros.toString()).div(1_000_000));

  it('a GRADUATED total never falls as units grow, and equals the sum of its tier amounts', () => {
    fc.assert(
      fc.property(tiersArb, unitsArb, unitsArb, (tiers, a, b) => {
        const [low, high] = a.lessThanOrEqualTo(b) ? [a, b] : [b, a];
        const lowCharge = priceTiers('GRADUATED', tiers, low);
        const highCharge = priceTiers('GRADUATED', tiers, high);
        expect(lowCharge.amount.lessThanOrEqualTo(highCharge.amount)).toBe(true);
        for (const charge of [lowCharge, highCharge]) {
          expect(charge.tiers.reduce((sum, tier) => sum.plus(tier.amount), new Money(0)).equals(charge.amount)).toBe(true);
          for (const tier of charge.tiers) expect(tier.amount.equals(tier.units.times(tier.unitPrice).plus(tier.flatFee))).toBe(true);
        }
        // Every unit lands in exactly one tier.
        expect(highCharge.tiers.reduce((sum, tier) => sum.plus(tier.units), new Money(0)).equals(high)).toBe(true);
      }),
    );
  });

  it('a VOLUME total is every unit at the first tier whose bound holds the total, plus its flat fee', () => {
    fc.assert(
      fc.property(tiersArb, unitsArb, (tiers, units) => {
        const charge = priceTiers('VOLUME', tiers, units);
        if (units.isZero()) {
          expect(charge.amount.isZero()).toBe(true);
          return;
        }
        const tier = tiers.find(
          (candidate) => candidate.upTo === null || units.times(1_000_000).lessThanOrEqualTo(candidate.upTo.toString()),
        )!;
        expect(charge.amount.equals(units.times(tier.unitPrice).plus(tier.flatFee))).toBe(true);
        expect(charge.tiers).toHaveLength(1);
      }),
    );
  });

  it('one unbounded tier prices GRADUATED and VOLUME alike: units × unitPrice + flatFee', () => {
    fc.assert(
      fc.property(
        unitsArb.filter((units) => !units.isZero()),
        fc.integer({ min: 0, max: 100_000 }),
        (units, price) => {
          const tiers: PriceTier[] = [{ upTo: null, unitPrice: new Money(price).div(10_000).toFixed(), flatFee: '3' }];
          const expected = units.times(tiers[0]!.unitPrice).plus(3);
          expect(priceTiers('GRADUATED', tiers, units).amount.equals(expected)).toBe(true);
          expect(priceTiers('VOLUME', tiers, units).amount.equals(expected)).toBe(true);
        },
      ),
    );
  });
});

describe('properties of a tiered invoice line', () => {
  const prices = (model: 'GRADUATED' | 'VOLUME'): OveragePrice => ({
    unitPrice: '7',
    per: q('1'),
    rounding: 'EXACT',
    model,
    tiers: TYPOGRAPHIC,
  });
  const line = (model: 'GRADUATED' | 'VOLUME', used: bigint, granted: bigint) =>
    rateInvoice({
      contractId: 'ctr_test',
      currency: 'USD',
      period: MARCH,
      baseFees: [],
      usage: [
        {
          ...usage('fonts', MARCH, { included: q('100'), price: prices(model) }, '0'),
          used,
          granted,
          grantBurn: granted > 0n ? [{ grantId: 'grant_a', units: granted }] : [],
        },
      ],
    }).lines[0]!;

  it('bills exactly the tiered charge of the units beyond included and grants, and its tiers add up to it', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('GRADUATED' as const, 'VOLUME' as const),
        fc.bigInt({ min: 0n, max: 400_000_000n }),
        fc.bigInt({ min: 0n, max: 50_000_000n }),
        (model, used, granted) => {
          const billable = used > q('100') ? (used - q('100') > granted ? used - q('100') - granted : 0n) : 0n;
          const expected = priceTiers(model, TYPOGRAPHIC, new Money(billable.toString()).div(1_000_000)).amount;
          const rated = line(model, used, granted);
          expect(new Money(rated.amount).equals(expected)).toBe(true);
          expect(rated.quantity).toBe(new Money(billable.toString()).div(1_000_000).toFixed());
          expect((rated.tiers ?? []).reduce((sum, tier) => sum.plus(tier.amount), new Money(0)).equals(expected)).toBe(true);
        },
      ),
    );
  });
});
