/**
 * Tier validation (R15) and the pure lookups other modules use: the marginal price
 * (Entitlement.overagePrice) and the price R4 compares.
 */
import { describe, expect, it } from 'vitest';
import { BadInputError } from '../../shared/errors.js';
import { units } from '../../shared/quantity.js';
import { parseMinimumCommit } from './minimum-commit.js';
import type { OverageTerms } from './model.js';
import { assertOverageCurrency, marginalUnitPrice, overageComparisonPrice, tierIndexAt } from './tiers.js';
import { parseOverage, type OverageInputShape } from './validation.js';

const TYPOGRAPHIC = [
  { upTo: '5', unitPrice: '7' },
  { upTo: '10', unitPrice: '6.50' },
  { unitPrice: '6', flatFee: '0' },
];

function refusal(input: OverageInputShape, currency = 'USD'): { field: unknown; message: string } {
  try {
    parseOverage(input, 'overage', currency);
  } catch (error) {
    expect(error).toBeInstanceOf(BadInputError);
    const bad = error as BadInputError;
    return { field: bad.extensions.field, message: bad.message };
  }
  throw new Error('expected a refusal');
}

describe('parsing tiered overage', () => {
  it('stores tiers exactly, one unit per block, and the first tier price as unitPrice (a given unitPrice is ignored)', () => {
    expect(parseOverage({ model: 'GRADUATED', unitPrice: '99', tiers: TYPOGRAPHIC }, 'overage', 'USD')).toEqual({
      unitPrice: '7',
      per: units(1),
      rounding: 'EXACT',
      model: 'GRADUATED',
      tiers: [
        { upTo: units(5), unitPrice: '7', flatFee: '0' },
        { upTo: units(10), unitPrice: '6.5', flatFee: '0' },
        { upTo: null, unitPrice: '6', flatFee: '0' },
      ],
    });
  });

  it('keeps PER_UNIT as it was: no model or tiers stored', () => {
    expect(parseOverage({ unitPrice: '0.20', per: '1000', rounding: 'UP' }, 'overage')).toEqual({
      unitPrice: '0.2',
      per: units(1000),
      rounding: 'UP',
    });
  });

  it.each([
    [
      'tiers that are not ascending',
      { model: 'VOLUME', tiers: [{ upTo: '10', unitPrice: '1' }, { upTo: '5', unitPrice: '1' }, { unitPrice: '1' }] },
      'overage.tiers[1].upTo',
      /greater than the previous/,
    ],
    [
      'a zero-width tier',
      { model: 'GRADUATED', tiers: [{ upTo: '5', unitPrice: '1' }, { upTo: '5', unitPrice: '1' }, { unitPrice: '1' }] },
      'overage.tiers[1].upTo',
      /none is empty/,
    ],
    [
      'a first tier of zero width',
      { model: 'GRADUATED', tiers: [{ upTo: '0', unitPrice: '1' }, { unitPrice: '1' }] },
      'overage.tiers[0].upTo',
      /greater than zero/,
    ],
    [
      'an unbounded tier before the last',
      { model: 'GRADUATED', tiers: [{ unitPrice: '1' }, { upTo: '5', unitPrice: '1' }] },
      'overage.tiers[0].upTo',
      /only the last tier may be unbounded/,
    ],
    [
      'a bounded last tier',
      { model: 'GRADUATED', tiers: [{ upTo: '5', unitPrice: '1' }] },
      'overage.tiers[0].upTo',
      /last tier has no upper bound/,
    ],
    ['no tiers for a tiered model', { model: 'VOLUME', unitPrice: '1' }, 'overage.tiers', /required for a VOLUME price/],
    ['an empty tier list', { model: 'VOLUME', tiers: [] }, 'overage.tiers', /1-50 tiers/],
    ['tiers on a PER_UNIT price', { unitPrice: '1', tiers: TYPOGRAPHIC }, 'overage.tiers', /only to GRADUATED or VOLUME/],
    ['a PER_UNIT price without unitPrice', { per: '1000' }, 'overage.unitPrice', /required for a PER_UNIT price/],
    ['a block size with tiers', { model: 'GRADUATED', per: '1000', tiers: TYPOGRAPHIC }, 'overage.per', /must be 1 with tiers/],
    ['a negative tier price', { model: 'GRADUATED', tiers: [{ unitPrice: '-1' }] }, 'overage.tiers[0].unitPrice', /non-negative/],
    [
      'a flat fee below the cent',
      { model: 'GRADUATED', tiers: [{ unitPrice: '1', flatFee: '0.005' }] },
      'overage.tiers[0].flatFee',
      /USD's minor unit allows \(2\)/,
    ],
    [
      'tiers that price nothing',
      { model: 'GRADUATED', tiers: [{ upTo: '5', unitPrice: '0' }, { unitPrice: '0' }] },
      'overage.tiers',
      /prices nothing/,
    ],
  ] as const)('refuses %s, naming the field', (_name, input, field, message) => {
    const refused = refusal(input as OverageInputShape);
    expect(refused.field).toBe(field);
    expect(refused.message).toMatch(message);
  });

  it('checks flat fees against the currency: whole yen only', () => {
    expect(refusal({ model: 'VOLUME', tiers: [{ unitPrice: '1', flatFee: '1.5' }] }, 'JPY').message).toMatch(
      /JPY's minor unit allows \(0\)/,
    );
    expect(parseOverage({ model: 'VOLUME', tiers: [{ unitPrice: '0.5', flatFee: '150' }] }, 'overage', 'JPY').tiers![0]!.flatFee).toBe(
      '150',
    );
  });

  it('refuses more than 50 tiers', () => {
    const tiers = [...Array.from({ length: 50 }, (_, i) => ({ upTo: String(i + 1), unitPrice: '1' })), { unitPrice: '1' }];
    expect(refusal({ model: 'GRADUATED', tiers }).field).toBe('overage.tiers');
  });

  it('checks an override’s flat fees against its contract’s currency once known', () => {
    const overage = parseOverage({ model: 'VOLUME', tiers: [{ unitPrice: '1', flatFee: '0.50' }] }, 'input.overage');
    expect(() => assertOverageCurrency(overage, 'USD', 'input.overage')).not.toThrow();
    expect(() => assertOverageCurrency(overage, 'JPY', 'input.overage')).toThrow(/input.overage.tiers\[0\].flatFee/);
  });
});

describe('minimumCommit', () => {
  it('is stored exactly, absent when omitted, and refused at zero or below the minor unit', () => {
    expect(parseMinimumCommit('3000.00', 'USD')).toEqual({ minimumCommit: '3000' });
    expect(parseMinimumCommit(null, 'USD')).toEqual({});
    expect(() => parseMinimumCommit('0', 'USD')).toThrow(/greater than zero/);
    expect(() => parseMinimumCommit('10.5', 'JPY')).toThrow(/minor unit/);
    expect(() => parseMinimumCommit('-1', 'USD')).toThrow(BadInputError);
  });
});

describe('marginal and comparison prices', () => {
  const graduated = parseOverage({ model: 'GRADUATED', tiers: TYPOGRAPHIC }, 'overage', 'USD');
  const volume: OverageTerms = { ...graduated, model: 'VOLUME' };

  it('finds the tier holding a level: up to and including upTo', () => {
    expect([units(1), units(5), units(5) + 1n, units(10), units(11)].map((level) => tierIndexAt(graduated.tiers!, level))).toEqual([
      0, 0, 1, 1, 2,
    ]);
  });

  it.each([
    // billable so far, price of the next unit
    [0, '7'],
    [4, '7'],
    [5, '6.5'],
    [9, '6.5'],
    [10, '6'],
    [1000, '6'],
  ])('after %s billable units the next one costs %s, for GRADUATED and VOLUME alike', (billable, expected) => {
    expect(marginalUnitPrice(graduated, units(billable)).toFixed()).toBe(expected);
    expect(marginalUnitPrice(volume, units(billable)).toFixed()).toBe(expected);
  });

  it('keeps unitPrice ÷ per for PER_UNIT', () => {
    expect(marginalUnitPrice({ unitPrice: '0.20', per: units(1000), rounding: 'UP' }, units(5)).toFixed()).toBe('0.0002');
  });

  it('compares tiered prices by what the first billable unit costs: tier 1 price plus its flat fee', () => {
    expect(overageComparisonPrice(graduated).toFixed()).toBe('7');
    const flat = parseOverage(
      { model: 'GRADUATED', tiers: [{ upTo: '100', unitPrice: '0', flatFee: '50' }, { unitPrice: '1' }] },
      'o',
      'USD',
    );
    expect(overageComparisonPrice(flat).toFixed()).toBe('50');
  });
});
