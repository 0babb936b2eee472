/**
 * Minimum commit (R15) by hand-computed tables, rated by the pure functions with no database.
 * Every expected figure below was worked out by hand before the code ran.
 *
 * April 2026 is 30 days. Growth: base fee 1,000, minimum commit 3,000; usage at 1.00 a
 * unit, nothing included. Scale: base fee 2,000, minimum commit 6,000.
 */
import { describe, expect, it } from 'vitest';
import type { PlanVersionDoc } from '../catalog/index.js';
import type { ContractDoc } from '../contracts/index.js';
import type { BilledPeriod } from './base-fee.js';
import { periodFees } from './minimum-commit.js';
import { rateInvoice } from './rate.js';
import { contract, plan, price, q, summary, usage } from './rate-fixtures.js';

const APRIL: BilledPeriod = { start: new Date('2026-04-01T00:00:00Z'), end: new Date('2026-05-01T00:00:00Z') };
const withFloor = (doc: PlanVersionDoc, minimumCommit: string): PlanVersionDoc => ({ ...doc, minimumCommit });
const GROWTH = withFloor(plan('growth', 1, '1000', 'Growth'), '3000');
const SCALE = withFloor(plan('scale', 1, '2000', 'Scale'), '6000');
const STARTER = plan('starter', 1, '500', 'Starter');

function rate(doc: ContractDoc, plans: PlanVersionDoc[], used: string, grants: Array<[string, string]> = []) {
  const fees = periodFees(doc, new Map(plans.map((p) => [p._id, p])), APRIL, 'USD');
  return rateInvoice({
    contractId: 'ctr_test',
    currency: 'USD',
    period: APRIL,
    ...fees,
    usage: [usage('api_calls', APRIL, { included: q('0'), price: price('1', '1', 'EXACT') }, used, grants)],
  });
}

describe('a minimum commit of 3,000 on growth (base fee 1,000), the whole period on one plan', () => {
  const doc = contract([['growth', 1, '2026-04-01T00:00:00Z']]);

  it.each([
    // used, lines, total
    [
      '1500',
      [
        ['BASE_FEE', '1', '1000.00', '1000.00'],
        ['OVERAGE', '1500', '1.00', '1500.00'],
        ['MINIMUM_COMMIT', '1', '500.00', '500.00'],
      ],
      '3000.00',
    ],
    [
      '2000',
      [
        ['BASE_FEE', '1', '1000.00', '1000.00'],
        ['OVERAGE', '2000', '1.00', '2000.00'],
      ],
      '3000.00',
    ],
    [
      '2600',
      [
        ['BASE_FEE', '1', '1000.00', '1000.00'],
        ['OVERAGE', '2600', '1.00', '2600.00'],
      ],
      '3600.00',
    ],
    [
      '0',
      [
        ['BASE_FEE', '1', '1000.00', '1000.00'],
        ['OVERAGE', '0', '1.00', '0.00'],
        ['MINIMUM_COMMIT', '1', '2000.00', '2000.00'],
      ],
      '3000.00',
    ],
  ])('with %s units used: below the floor it adds the difference, at or above it adds nothing', (used, lines, total) => {
    const invoice = rate(doc, [GROWTH], used);
    expect(summary(invoice.lines)).toEqual(lines);
    expect(invoice.total).toBe(total);
  });

  it('counts usage net of grant credits: 2,500 used, 1,000 credited, leaves 500 to the floor', () => {
    const invoice = rate(doc, [GROWTH], '2500', [['grant_a', '1000']]);
    expect(summary(invoice.lines)).toEqual([
      ['BASE_FEE', '1', '1000.00', '1000.00'],
      ['OVERAGE', '2500', '1.00', '2500.00'],
      ['CREDIT', '1000', '-1.00', '-1000.00'],
      ['MINIMUM_COMMIT', '1', '500.00', '500.00'],
    ]);
    expect(invoice.total).toBe('3000.00');
  });

  it('describes the floor, the charges and the difference, on a stable id', () => {
    const [first, second] = [rate(doc, [GROWTH], '1500'), rate(doc, [GROWTH], '100')];
    const line = first.lines.at(-1)!;
    expect(line).toMatchObject({ kind: 'MINIMUM_COMMIT', feature: null, planKey: 'growth', planVersion: 1, prorated: false });
    expect(line.description).toBe(
      'Minimum commit 3000.00 USD for 2026-04-01 to 2026-05-01 (3000.00 USD from Growth (growth v1)): ' +
        'base fee and usage charges 2500.00 USD, difference 500.00 USD',
    );
    expect(second.lines.at(-1)!.id).toBe(line.id);
  });

  it('adds no line for a plan without a minimum commit', () => {
    const invoice = rate(contract([['starter', 1, '2026-04-01T00:00:00Z']]), [STARTER], '10');
    expect(invoice.lines.map((entry) => entry.kind)).toEqual(['BASE_FEE', 'OVERAGE']);
  });
});

describe('a mid-period plan change prorates the floor like the base fee, in one line for the period', () => {
  it.each([
    // used, base fees, floor 1,500 + 3,000 = 4,500: the line, the total
    ['1200', '2700.00 charged', ['MINIMUM_COMMIT', '1', '1800.00', '1800.00'], '4500.00'],
    ['3000', '4500.00 charged', null, '4500.00'],
    ['5000', '6500.00 charged', null, '6500.00'],
  ])('growth → scale on 2026-04-16 (15 of 30 days each), %s used (%s)', (used, _charged, floorLine, total) => {
    const doc = contract([
      ['growth', 1, '2026-04-01T00:00:00Z'],
      ['scale', 1, '2026-04-16T00:00:00Z'],
    ]);
    const invoice = rate(doc, [GROWTH, SCALE], used);
    // Base fees 500 + 1,000 = 1,500.
    expect(summary(invoice.lines)).toEqual([
      ['BASE_FEE', '0.5', '1000.00', '500.00'],
      ['BASE_FEE', '0.5', '2000.00', '1000.00'],
      ['OVERAGE', used, '1.00', `${used}.00`],
      ...(floorLine ? [floorLine] : []),
    ]);
    expect(invoice.total).toBe(total);
  });

  it('describes each pin’s prorated part of the floor', () => {
    const doc = contract([
      ['growth', 1, '2026-04-01T00:00:00Z'],
      ['scale', 1, '2026-04-16T00:00:00Z'],
    ]);
    const line = rate(doc, [GROWTH, SCALE], '1200').lines.at(-1)!;
    expect(line).toMatchObject({ planKey: null, planVersion: null, prorated: true });
    expect(line.description).toBe(
      'Minimum commit 4500.00 USD for 2026-04-01 to 2026-05-01 (1500.00 USD from Growth (growth v1), prorated 15 of 30 days of 3000.00 USD; ' +
        '3000.00 USD from Scale (scale v1), prorated 15 of 30 days of 6000.00 USD): base fee and usage charges 2700.00 USD, difference 1800.00 USD',
    );
  });

  it('growth → scale on 2026-04-11 (10 and 20 of 30 days): floor 1,000 + 4,000, base fees 333.34 + 1,333.33, nothing used: 3,333.33 added', () => {
    const doc = contract([
      ['growth', 1, '2026-04-01T00:00:00Z'],
      ['scale', 1, '2026-04-11T00:00:00Z'],
    ]);
    const invoice = rate(doc, [GROWTH, SCALE], '0');
    expect(summary(invoice.lines)).toEqual([
      ['BASE_FEE', '0.333333', '1000.00', '333.34'],
      ['BASE_FEE', '0.666667', '2000.00', '1333.33'],
      ['OVERAGE', '0', '1.00', '0.00'],
      ['MINIMUM_COMMIT', '1', '3333.33', '3333.33'],
    ]);
    expect(invoice.total).toBe('5000.00');
  });

  it('growth → starter (no minimum) on 2026-04-16: only growth’s half of the floor, 1,500, holds', () => {
    const doc = contract([
      ['growth', 1, '2026-04-01T00:00:00Z'],
      ['starter', 1, '2026-04-16T00:00:00Z'],
    ]);
    const invoice = rate(doc, [GROWTH, STARTER], '100');
    // Base fees 500 + 250, usage 100: 850 charged, 650 short of 1,500.
    expect(summary(invoice.lines).at(-1)).toEqual(['MINIMUM_COMMIT', '1', '650.00', '650.00']);
    expect(invoice.total).toBe('1500.00');
  });
});
