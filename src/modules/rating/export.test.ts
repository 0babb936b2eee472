import { describe, expect, it } from 'vitest';
import { toBillingExport } from './export.js';
import type { InvoiceLineView, InvoiceView } from './model.js';

const line = (
  kind: InvoiceLineView['kind'],
  quantity: string,
  unitPrice: string | null,
  amount: string,
  id = `il_${kind}_${quantity}`,
): InvoiceLineView => ({
  id,
  kind,
  feature: kind === 'BASE_FEE' ? null : 'api_calls',
  description: kind,
  quantity,
  unitPrice,
  amount,
  periodStart: new Date('2026-03-31T00:00:00Z'),
  periodEnd: new Date('2026-04-30T00:00:00Z'),
  planKey: null,
  planVersion: null,
  prorated: false,
});

const invoice = (lines: InvoiceLineView[], amountDue: string, currency = 'USD'): InvoiceView => ({
  contractId: 'ctr_4821',
  accountId: 'acct_4821',
  periodStart: new Date('2026-03-31T00:00:00Z'),
  periodEnd: new Date('2026-04-30T00:00:00Z'),
  currency,
  lines,
  usage: [],
  total: amountDue,
  exactTotal: amountDue,
  amountDue,
  final: true,
  finalizedAt: new Date(),
  finalizedBy: 'ops',
});

describe('the billing export', () => {
  it('maps each line to minor units, with unit pricing where it is exact', () => {
    const exported = toBillingExport(
      invoice(
        [line('BASE_FEE', '0.5', '499.00', '249.50'), line('OVERAGE', '1101', '0.20', '220.20'), line('CREDIT', '500', '-0.20', '-100.00')],
        '369.70',
      ),
    );
    expect(exported.amountDueMinor).toBe(36970n);
    expect(exported.lines.map((entry) => [entry.amountMinor, entry.unitAmountDecimal, entry.unitPricingExact])).toEqual([
      [24950n, '49900', false],
      [22020n, '20', true],
      [-10000n, '-20', true],
    ]);
    expect(exported.lines[1]!.metadata).toEqual({
      allotment_line_id: 'il_OVERAGE_1101',
      allotment_contract_id: 'ctr_4821',
      allotment_period_start: '2026-03-31T00:00:00.000Z',
      allotment_kind: 'OVERAGE',
      allotment_feature: 'api_calls',
    });
  });

  it('gives sub-cent lines the cents their sum rounds to', () => {
    const exported = toBillingExport(
      invoice(
        [
          line('OVERAGE', '0.0125', '0.40', '0.005', 'a'),
          line('OVERAGE', '0.0125', '0.40', '0.005', 'b'),
          line('OVERAGE', '0.0125', '0.40', '0.005', 'c'),
        ],
        '0.02',
      ),
    );
    expect(exported.lines.map((entry) => entry.amountMinor)).toEqual([1n, 1n, 0n]);
    expect(exported.amountDueMinor).toBe(2n);
  });

  it('uses the currency minor unit', () => {
    const exported = toBillingExport(invoice([line('OVERAGE', '3', '100', '300')], '300', 'JPY'));
    expect([exported.lines[0]!.amountMinor, exported.lines[0]!.unitAmountDecimal, exported.amountDueMinor]).toEqual([300n, '100', 300n]);
  });
});
