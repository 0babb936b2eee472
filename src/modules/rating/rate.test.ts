/**
 * Hand-computed invoice tables (R11, R12), rated by the pure functions with no database.
 * Every expected figure below was worked out by hand before the code ran.
 * Base fee proration has its own tables in base-fee.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { Money } from '../../shared/money.js';
import type { BilledPeriod } from './base-fee.js';
import { lineId } from './lines.js';
import type { OveragePrice } from './overage.js';
import { rateInvoice } from './rate.js';
import { MARCH, baseFees, contract, plan, price, q, summary, usage } from './rate-fixtures.js';

describe('the data platform: $2,000 base, 5,000,000 rows included, $0.40 per extra 1,000', () => {
  const dataPlatform = contract([['data_platform', 1, '2026-03-01T00:00:00Z']]);
  const fees = baseFees(dataPlatform, [plan('data_platform', 1, '2000', 'Data platform')], MARCH);
  const rate = (used: string, rounding: 'UP' | 'EXACT') =>
    rateInvoice({
      contractId: 'ctr_test',
      currency: 'USD',
      period: MARCH,
      baseFees: fees,
      usage: [usage('rows_scanned', MARCH, { included: q('5000000'), price: price('0.40', '1000', rounding) }, used)],
    });

  it.each([
    // used,      rounding, usage line [blocks, amount], exact total, total and amountDue
    ['5000000', 'UP', ['0', '0.00'], '2000.00', '2000.00'],
    ['5000001', 'UP', ['1', '0.40'], '2000.40', '2000.40'],
    ['7250500', 'UP', ['2251', '900.40'], '2900.40', '2900.40'],
    ['5000000', 'EXACT', ['0', '0.00'], '2000.00', '2000.00'],
    ['5000001', 'EXACT', ['0.001', '0.0004'], '2000.0004', '2000.00'],
    ['7250500', 'EXACT', ['2250.5', '900.20'], '2900.20', '2900.20'],
  ] as const)('rates %s rows %s', (used, rounding, overage, exactTotal, total) => {
    const invoice = rate(used, rounding);
    // The usage line is there within the included amount too, at 0.
    expect(summary(invoice.lines)).toEqual([
      ['BASE_FEE', '1', '2000.00', '2000.00'],
      ['OVERAGE', overage[0], '0.40', overage[1]],
    ]);
    expect(invoice.exactTotal).toBe(exactTotal);
    expect(invoice.total).toBe(total);
    expect(invoice.amountDue).toBe(total);
  });

  it('shows usage within the included amount as a line of its own, at 0', () => {
    const line = rate('1300', 'UP').lines[1]!;
    expect(line).toMatchObject({ kind: 'OVERAGE', feature: 'rows_scanned', quantity: '0', unitPrice: '0.40', amount: '0.00' });
    expect(line.description).toBe('rows_scanned: 1,300 used, within 5,000,000 included');
  });

  it('breaks usage down into included, granted, used and overage units', () => {
    const [rows] = rate('7250500', 'UP').usage;
    expect(rows).toMatchObject({
      included: q('5000000'),
      granted: 0n,
      used: q('7250500'),
      coveredByIncluded: q('5000000'),
      coveredByGrants: 0n,
      overage: q('2250500'),
      grossBlocks: '2251',
      netBlocks: '2251',
      amount: '900.40',
    });
  });
});

describe('the API company: growth ($499, 10M calls, $0.20 per 1,000 UP) upgraded mid-cycle, with a 500,000-call credit', () => {
  // Billing anchor 2026-01-31: the period 2026-03-31 → 2026-04-30 is 30 days. The upgrade to
  // scale ($1,499, 15M calls included, SOFT) takes effect on 2026-04-15, halfway through.
  const period: BilledPeriod = { start: new Date('2026-03-31T00:00:00Z'), end: new Date('2026-04-30T00:00:00Z') };
  const apiCompany = contract([
    ['growth', 1, '2026-01-31T00:00:00Z'],
    ['scale', 1, '2026-04-15T00:00:00Z'],
  ]);
  const plans = [plan('growth', 1, '499.00', 'Growth'), plan('scale', 1, '1499.00', 'Scale')];

  it('prorates both base fees, bills the overage beyond the new included amount and credits what the grant covered', () => {
    const invoice = rateInvoice({
      contractId: 'ctr_4821',
      currency: 'USD',
      period,
      baseFees: baseFees(apiCompany, plans, period),
      usage: [
        // The scale plan governs the whole period (R3): 15M included. 16,100,500 used:
        // 1,100,500 beyond → 1,101 blocks; the grant covers 500,000 → 600,500 left → 601 blocks.
        usage('api_calls', period, { included: q('15000000'), price: price('0.20', '1000', 'UP') }, '16100500', [['grant_500k', '500000']]),
        // 52,000 exports, 50,000 included: 2,000 at $2 per 1,000 EXACT = 2 blocks = $4.00.
        usage('bulk_export', period, { included: q('50000'), price: price('2', '1000', 'EXACT') }, '52000'),
      ],
    });
    expect(summary(invoice.lines)).toEqual([
      ['BASE_FEE', '0.5', '499.00', '249.50'],
      ['BASE_FEE', '0.5', '1499.00', '749.50'],
      ['OVERAGE', '1101', '0.20', '220.20'],
      ['CREDIT', '500', '-0.20', '-100.00'],
      ['OVERAGE', '2', '2.00', '4.00'],
    ]);
    // 249.50 + 749.50 + 220.20 − 100.00 + 4.00
    expect(invoice.total).toBe('1123.20');
    expect(invoice.amountDue).toBe('1123.20');
    expect(invoice.usage[0]).toMatchObject({
      granted: q('500000'),
      coveredByGrants: q('500000'),
      overage: q('600500'),
      grossBlocks: '1101',
      netBlocks: '601',
      amount: '120.20',
    });
    // Named by the grant's reason, not its id.
    expect(invoice.lines[3]!.description).toBe('api_calls credit: 500,000 covered by Reason of grant_500k, 500 × 1,000 at 0.20 USD');
  });

  it('credits whole blocks only when UP rounding leaves a partial one', () => {
    // 10,000,500 used, 10M included, 250 covered by a grant: 500 beyond → 1 block; 250 left → still 1 block.
    const invoice = rateInvoice({
      contractId: 'ctr_4821',
      currency: 'USD',
      period,
      baseFees: [],
      usage: [usage('api_calls', period, { included: q('10000000'), price: price('0.20', '1000', 'UP') }, '10000500', [['g', '250']])],
    });
    expect(summary(invoice.lines)).toEqual([['OVERAGE', '1', '0.20', '0.20']]);
    expect(invoice.usage[0]).toMatchObject({ coveredByGrants: q('250'), overage: q('250') });
  });
});

describe('the soft-limit case: bulk exports at $0.002 each (SOFT, $2 per 1,000)', () => {
  it('bills 2,000 exports beyond 50,000 as $4.00', () => {
    const invoice = rateInvoice({
      contractId: 'c',
      currency: 'USD',
      period: MARCH,
      baseFees: [],
      usage: [usage('bulk_export', MARCH, { included: q('50000'), price: price('2', '1000', 'EXACT') }, '52000')],
    });
    expect(summary(invoice.lines)).toEqual([['OVERAGE', '2', '2.00', '4.00']]);
    expect(invoice.usage[0]!.overage).toBe(q('2000'));
    expect(invoice.total).toBe('4.00');
  });
});

describe('decimal edge cases', () => {
  it('rates 0.000001 units exactly, and rounds it up to a whole block under UP', () => {
    const rate = (overage: OveragePrice) =>
      rateInvoice({
        contractId: 'c',
        currency: 'USD',
        period: MARCH,
        baseFees: [],
        usage: [usage('tokens', MARCH, { included: 0n, price: overage }, '0.000001')],
      });
    const exact = rate(price('1', '1', 'EXACT'));
    expect(summary(exact.lines)).toEqual([['OVERAGE', '0.000001', '1.00', '0.000001']]);
    expect([exact.exactTotal, exact.total, exact.amountDue]).toEqual(['0.000001', '0.00', '0.00']);
    expect(summary(rate(price('0.40', '1000', 'UP')).lines)).toEqual([['OVERAGE', '1', '0.40', '0.40']]);
  });

  it('keeps totals above 2^53 micro-units exact to the last micro-unit', () => {
    // 10,000,000,000.000001 units = 10,000,000,000,000,001 micro-units > 2^53 (9,007,199,254,740,992).
    const used = '10000000000.000001';
    expect(q(used)).toBeGreaterThan(2n ** 53n);
    const invoice = rateInvoice({
      contractId: 'c',
      currency: 'USD',
      period: MARCH,
      baseFees: [],
      usage: [usage('tokens', MARCH, { included: 0n, price: price('1', '1', 'EXACT') }, used)],
    });
    expect(invoice.exactTotal).toBe('10000000000.000001');
    expect(invoice.total).toBe('10000000000.00');
    expect(invoice.amountDue).toBe('10000000000.00');
  });

  it('keeps money above 2^53 minor units exact', () => {
    // 9,000,000,000,000 units at $1,000 each: $9,000,000,000,000,000 = 9 × 10^17 cents.
    const invoice = rateInvoice({
      contractId: 'c',
      currency: 'USD',
      period: MARCH,
      baseFees: [],
      usage: [usage('tokens', MARCH, { included: q('0.5'), price: price('1000', '1', 'EXACT') }, '9000000000000')],
    });
    expect(invoice.total).toBe('8999999999999500.00');
  });

  it('rounds non-terminating EXACT blocks half-even to 12 digits', () => {
    const invoice = rateInvoice({
      contractId: 'c',
      currency: 'USD',
      period: MARCH,
      baseFees: [],
      usage: [usage('tokens', MARCH, { included: 0n, price: price('0.30', '3', 'EXACT') }, '2')],
    });
    // 2 ÷ 3 = 0.666666666666|67 → 0.666666666667 blocks × 0.30
    expect(summary(invoice.lines)).toEqual([['OVERAGE', '0.666666666667', '0.30', '0.2000000000001']]);
    expect(invoice.amountDue).toBe('0.20');
  });

  it('bills nothing for unlimited or unpriced usage, and still reports it', () => {
    const invoice = rateInvoice({
      contractId: 'c',
      currency: 'USD',
      period: MARCH,
      baseFees: [],
      usage: [
        usage('a', MARCH, { included: null, price: price('1', '1', 'EXACT') }, '99'),
        usage('b', MARCH, { included: q('1'), price: null }, '5'),
      ],
    });
    // Both are on the invoice, at 0.
    expect(invoice.lines.map((line) => [line.feature, line.quantity, line.unitPrice, line.amount, line.description])).toEqual([
      ['a', '0', '1.00', '0.00', 'a: 99 used, within unlimited included'],
      ['b', '0', null, '0.00', 'b: 5 used, 4 beyond 1 included; overage is not priced'],
    ]);
    expect(invoice.usage.map((entry) => [entry.feature, entry.overage])).toEqual([
      ['a', 0n],
      ['b', q('4')],
    ]);
    expect(invoice.total).toBe('0.00');
  });

  it('uses the currency minor unit: JPY has none, KWD has three', () => {
    const rate = (currency: string) =>
      rateInvoice({
        contractId: 'c',
        currency,
        period: MARCH,
        baseFees: [],
        usage: [usage('t', MARCH, { included: 0n, price: price('0.0005', '1', 'EXACT') }, '3')],
      });
    expect([rate('JPY').exactTotal, rate('JPY').total, rate('JPY').amountDue]).toEqual(['0.0015', '0', '0']);
    expect([rate('KWD').exactTotal, rate('KWD').total, rate('KWD').amountDue]).toEqual(['0.0015', '0.002', '0.002']);
  });
});

describe('line ids', () => {
  it('are stable for (contract, period, kind, subject) and differ otherwise', () => {
    const id = lineId('ctr_1', MARCH.start, 'OVERAGE', 'rows@2026-03-01T00:00:00.000Z');
    expect(id).toMatch(/^il_[0-9a-f]{32}$/);
    expect(lineId('ctr_1', MARCH.start, 'OVERAGE', 'rows@2026-03-01T00:00:00.000Z')).toBe(id);
    expect(lineId('ctr_1', MARCH.start, 'CREDIT', 'rows@2026-03-01T00:00:00.000Z')).not.toBe(id);
    expect(lineId('ctr_2', MARCH.start, 'OVERAGE', 'rows@2026-03-01T00:00:00.000Z')).not.toBe(id);
  });

  it('do not depend on the usage or the amounts', () => {
    const rate = (used: string) =>
      rateInvoice({
        contractId: 'c',
        currency: 'USD',
        period: MARCH,
        baseFees: [],
        usage: [usage('t', MARCH, { included: 0n, price: price('1', '1', 'EXACT') }, used)],
      });
    expect(rate('1').lines[0]!.id).toBe(rate('2').lines[0]!.id);
  });
});

it('Money stays exact: 0.1 + 0.2 is 0.3', () => {
  expect(new Money('0.1').plus('0.2').toFixed()).toBe('0.3');
});
