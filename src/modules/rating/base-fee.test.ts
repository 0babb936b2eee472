/**
 * Hand-computed base fee proration (R11, R12): each plan pin charged for its share of the billed
 * period, on the cent, rated by the pure functions with no database.
 * Every expected figure below was worked out by hand before the code ran.
 */
import { describe, expect, it } from 'vitest';
import { billingEnd } from '../contracts/index.js';
import type { BilledPeriod } from './base-fee.js';
import { rateInvoice } from './rate.js';
import { MARCH, baseFees, contract, plan } from './rate-fixtures.js';

describe('base fee proration on a mid-cycle plan change', () => {
  // 2026-02-28 → 2026-03-31 is 31 days (2,678,400 s); the upgrade lands on 2026-03-10.
  const period: BilledPeriod = { start: new Date('2026-02-28T00:00:00Z'), end: new Date('2026-03-31T00:00:00Z') };

  it('charges each pin its fee × its time ÷ the period time, on the cent, summing to the rounded exact total, described in days', () => {
    const doc = contract([
      ['growth', 1, '2026-01-31T00:00:00Z'],
      ['scale', 1, '2026-03-10T00:00:00Z'],
    ]);
    const fees = baseFees(doc, [plan('growth', 1, '499.00'), plan('scale', 1, '1499.00')], period);
    // 499 × 864,000 / 2,678,400 = 160.9677…; 1499 × 1,814,400 / 2,678,400 = 1015.4516…;
    // exact sum 1176.4193… → 1176.42 due; floors 160.96 + 1015.45 = 1176.41, the missing
    // cent goes to the larger remainder (0.77 > 0.16).
    expect(fees.map((fee) => [fee.planKey, fee.share.toFixed(), fee.amount.toFixed(2), fee.segmentMs / 1000])).toEqual([
      ['growth', '0.322581', '160.97', 864_000],
      ['scale', '0.677419', '1015.45', 1_814_400],
    ]);
    const invoice = rateInvoice({ contractId: 'c', currency: 'USD', period, baseFees: fees, usage: [] });
    expect(invoice.total).toBe('1176.42');
    // 864,000 s of 2,678,400 s: 10 of 31 days.
    expect(invoice.lines[0]!.description).toBe(
      'growth (growth v1) base fee, 2026-02-28 to 2026-03-10: prorated 10 of 31 days of 499.00 USD',
    );
    expect(invoice.lines[1]!.description).toBe(
      'scale (scale v1) base fee, 2026-03-10 to 2026-03-31: prorated 21 of 31 days of 1499.00 USD',
    );
  });

  it('never loses a cent to rounding: three thirds of 100.00 are 33.34 + 33.33 + 33.33', () => {
    const april: BilledPeriod = { start: new Date('2026-04-01T00:00:00Z'), end: new Date('2026-05-01T00:00:00Z') };
    const doc = contract([
      ['a', 1, '2026-04-01T00:00:00Z'],
      ['b', 1, '2026-04-11T00:00:00Z'],
      ['c', 1, '2026-04-21T00:00:00Z'],
    ]);
    const fees = baseFees(doc, [plan('a', 1, '100'), plan('b', 1, '100'), plan('c', 1, '100')], april);
    expect(fees.map((fee) => fee.amount.toFixed(2))).toEqual(['33.34', '33.33', '33.33']);
  });

  it('charges only the time the contract is in force', () => {
    const doc = contract([['data_platform', 1, '2026-03-16T00:00:00Z']], { billingAnchor: new Date('2026-03-01T00:00:00Z') });
    // 16 of 31 days: 2000 × 16 / 31 = 1032.2580… → 1032.26
    expect(baseFees(doc, [plan('data_platform', 1, '2000')], MARCH).map((fee) => [fee.prorated, fee.amount.toFixed(2)])).toEqual([
      [true, '1032.26'],
    ]);
  });

  it('stops charging at canceledAt: a contract canceled on March 16 without endsAt pays 15 of 31 days, and nothing after', () => {
    const canceled = contract([['data_platform', 1, '2026-03-01T00:00:00Z']], {
      status: 'CANCELED',
      statusHistory: [
        { status: 'ACTIVE', at: new Date('2026-03-01T00:00:00Z') },
        { status: 'CANCELED', at: new Date('2026-03-16T00:00:00Z') },
      ],
      canceledAt: new Date('2026-03-16T00:00:00Z'),
    });
    const plans = [plan('data_platform', 1, '2000', 'Data platform')];
    // 2000 × 15 / 31 = 967.7419… → 967.74
    const march = baseFees(canceled, plans, MARCH);
    expect(march.map((fee) => [fee.prorated, fee.amount.toFixed(2), fee.end.toISOString()])).toEqual([
      [true, '967.74', '2026-03-16T00:00:00.000Z'],
    ]);
    const invoice = rateInvoice({ contractId: 'c', currency: 'USD', period: MARCH, baseFees: march, usage: [] });
    expect(invoice.lines[0]!.description).toBe(
      'Data platform (data_platform v1) base fee, 2026-03-01 to 2026-03-16: prorated 15 of 31 days of 2000.00 USD',
    );
    const april: BilledPeriod = { start: new Date('2026-04-01T00:00:00Z'), end: new Date('2026-05-01T00:00:00Z') };
    expect(baseFees(canceled, plans, april)).toEqual([]);
    expect(billingEnd(canceled)).toEqual(new Date('2026-03-16T00:00:00Z'));
    // A document written before canceledAt existed: canceled at its last write.
    const legacy = { ...canceled, statusHistory: undefined, canceledAt: undefined, updatedAt: new Date('2026-03-16T00:00:00Z') };
    expect(baseFees(legacy, plans, MARCH).map((fee) => fee.amount.toFixed(2))).toEqual(['967.74']);
  });

  it('charges no base fee for the time a contract was canceled before being revived', () => {
    const revived = contract([['data_platform', 1, '2026-03-01T00:00:00Z']], {
      statusHistory: [
        { status: 'ACTIVE', at: new Date('2026-03-01T00:00:00Z') },
        { status: 'CANCELED', at: new Date('2026-03-11T00:00:00Z') },
        { status: 'ACTIVE', at: new Date('2026-03-21T00:00:00Z') },
      ],
    });
    // 10 and 11 of 31 days of 2000: 645.1612… + 709.6774… = 1354.8387… → 1354.84, the cent to the larger remainder.
    const fees = baseFees(revived, [plan('data_platform', 1, '2000')], MARCH);
    expect(fees.map((fee) => [fee.start.toISOString().slice(0, 10), fee.end.toISOString().slice(0, 10), fee.amount.toFixed(2)])).toEqual([
      ['2026-03-01', '2026-03-11', '645.16'],
      ['2026-03-21', '2026-04-01', '709.68'],
    ]);
  });

  it('describes a share that is not whole days to two decimals', () => {
    const doc = contract([['data_platform', 1, '2026-03-16T12:00:00Z']], { billingAnchor: new Date('2026-03-01T00:00:00Z') });
    const invoice = rateInvoice({
      contractId: 'c',
      currency: 'USD',
      period: MARCH,
      baseFees: baseFees(doc, [plan('data_platform', 1, '2000')], MARCH),
      usage: [],
    });
    expect(invoice.lines[0]!.description).toBe(
      'data_platform (data_platform v1) base fee, 2026-03-16 to 2026-04-01: prorated 15.5 of 31 days of 2000.00 USD',
    );
  });

  it('skips pins without a base fee and charges an unchanged plan exactly', () => {
    const doc = contract([
      ['free', 1, '2026-03-01T00:00:00Z'],
      ['paid', 1, '2026-03-16T12:00:00Z'],
    ]);
    const fees = baseFees(doc, [plan('free', 1, null), plan('paid', 1, '31.00')], MARCH);
    // 31.00 × 15.5 / 31 = 15.50
    expect(fees.map((fee) => [fee.planKey, fee.amount.toFixed(2)])).toEqual([['paid', '15.50']]);
    expect(baseFees(contract([['paid', 1, '2026-03-01T00:00:00Z']]), [plan('paid', 1, '0.001')], MARCH)[0]!.amount.toFixed()).toBe('0.001');
  });
});
