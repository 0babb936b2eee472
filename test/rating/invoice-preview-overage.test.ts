/**
 * Contract.invoicePreview over GraphQL (R11, R12): usage overage rated to the cent from usage
 * recorded with recordUsage, with UP and EXACT blocks, a SOFT limit, and two contracts
 * sharing a metered feature.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFINE_FEATURE, gql, publishPlan, seedReferenceAccount } from '../support/fixtures.js';
import { startTestInstance, type TestInstance } from '../support/harness.js';
import { RATING_ENV, ROWS_SCANNED, dataPlatformContract, invoicePreviewOk, table, uniqueSuffix } from '../support/rating-fixtures.js';
import { key, recordUsageOk } from '../support/usage-fixtures.js';

let app: TestInstance;
beforeAll(async () => {
  app = await startTestInstance({ env: RATING_ENV });
  await seedReferenceAccount(app);
  await gql(app, DEFINE_FEATURE, { input: ROWS_SCANNED });
});
afterAll(() => app.stop());

const MARCH = '2026-03-01T00:00:00.000Z';

describe('the data platform: $2,000 base, 5,000,000 rows included, $0.40 per extra 1,000 rows', () => {
  it.each([
    {
      rounding: 'UP' as const,
      steps: [
        // recorded, cumulative used, OVERAGE line, total (rounded, = amountDue), exactTotal
        ['5000000', '5000000', ['0', '0.40', '0.00'], '2000.00', '2000.00'],
        ['1', '5000001', ['1', '0.40', '0.40'], '2000.40', '2000.40'],
        ['2250499', '7250500', ['2251', '0.40', '900.40'], '2900.40', '2900.40'],
      ],
    },
    {
      rounding: 'EXACT' as const,
      steps: [
        ['5000000', '5000000', ['0', '0.40', '0.00'], '2000.00', '2000.00'],
        ['1', '5000001', ['0.001', '0.40', '0.0004'], '2000.00', '2000.0004'],
        ['2250499', '7250500', ['2250.5', '0.40', '900.20'], '2900.20', '2900.20'],
      ],
    },
  ])('rates 5,000,000 / 5,000,001 / 7,250,500 rows with $rounding blocks', async ({ rounding, steps }) => {
    const { accountId, contractId } = await dataPlatformContract(app, rounding);
    for (const [quantity, used, overage, total, exactTotal] of steps as Array<[string, string, [string, string, string], string, string]>) {
      await recordUsageOk(app, { accountId, feature: 'rows_scanned', quantity, idempotencyKey: key(), timestamp: '2026-03-10T12:00:00Z' });
      const invoice = await invoicePreviewOk(app, contractId, MARCH);
      // The usage line is on the invoice within the included amount too, at 0.
      expect(table(invoice), `${used} rows ${rounding}`).toEqual([
        ['BASE_FEE', null, '1', '2000.00', '2000.00'],
        ['OVERAGE', 'rows_scanned', ...overage],
      ]);
      expect([invoice.total, invoice.amountDue, invoice.exactTotal]).toEqual([total, total, exactTotal]);
      expect(invoice.usage).toEqual([
        expect.objectContaining({
          feature: 'rows_scanned',
          included: '5000000',
          granted: '0',
          used,
          coveredByGrants: '0',
          rounding,
          unitPrice: '0.40',
          per: '1000',
        }),
      ]);
    }
    const invoice = await invoicePreviewOk(app, contractId, MARCH);
    expect(invoice).toMatchObject({
      contractId,
      accountId,
      periodStart: MARCH,
      periodEnd: '2026-04-01T00:00:00.000Z',
      currency: 'USD',
      final: false,
      finalizedAt: null,
      pendingCorrections: [],
      correctionTotal: '0.00',
    });
    expect(invoice.usage[0]).toMatchObject({ coveredByIncluded: '5000000', overage: '2250500' });
    expect(invoice.lines[1].description).toBe(
      `Rows scanned overage: 2,250,500 beyond 5,000,000 included, ${rounding === 'UP' ? '2,251 × 1,000 (rounded up)' : '2,250.5 × 1,000 (pro rata)'} at 0.40 USD`,
    );
  });

  it('rates each billing period from its own usage, and keeps line ids stable as usage grows', async () => {
    const { accountId, contractId } = await dataPlatformContract(app, 'UP');
    await recordUsageOk(app, {
      accountId,
      feature: 'rows_scanned',
      quantity: '5000500',
      idempotencyKey: key(),
      timestamp: '2026-03-31T23:59:59Z',
    });
    const first = await invoicePreviewOk(app, contractId, MARCH);
    await recordUsageOk(app, {
      accountId,
      feature: 'rows_scanned',
      quantity: '6000000',
      idempotencyKey: key(),
      timestamp: '2026-04-01T00:00:00Z',
    });
    await recordUsageOk(app, {
      accountId,
      feature: 'rows_scanned',
      quantity: '1000',
      idempotencyKey: key(),
      timestamp: '2026-03-15T00:00:00Z',
    });
    const again = await invoicePreviewOk(app, contractId, MARCH);
    const april = await invoicePreviewOk(app, contractId, '2026-04-01T00:00:00Z');
    expect(table(first)).toEqual([
      ['BASE_FEE', null, '1', '2000.00', '2000.00'],
      ['OVERAGE', 'rows_scanned', '1', '0.40', '0.40'],
    ]);
    expect(table(again)).toEqual([
      ['BASE_FEE', null, '1', '2000.00', '2000.00'],
      ['OVERAGE', 'rows_scanned', '2', '0.40', '0.80'],
    ]);
    expect(again.lines.map((line: any) => line.id)).toEqual(first.lines.map((line: any) => line.id));
    expect(table(april)).toEqual([
      ['BASE_FEE', null, '1', '2000.00', '2000.00'],
      ['OVERAGE', 'rows_scanned', '1000', '0.40', '400.00'],
    ]);
    expect(new Set([...april.lines, ...again.lines].map((line: any) => line.id)).size).toBe(4);
  });
});

describe('the soft-limit case: bulk exports at $0.002 each', () => {
  it('bills 52,000 exports against 50,000 included as 2,000 × $0.002 = $4.00', async () => {
    const suffix = uniqueSuffix();
    await publishPlan(app, {
      key: `exports_${suffix}`,
      name: 'Exports',
      currency: 'USD',
      entitlements: [{ feature: 'bulk_export', included: '50000', enforcement: 'SOFT', overage: { unitPrice: '0.002', per: '1' } }],
    });
    const accountId = `acct_exp_${suffix}`;
    await gql(app, `mutation ($input: ContractInput!) { upsertContract(input: $input) { id } }`, {
      input: { id: `ctr_exp_${suffix}`, accountId, planKey: `exports_${suffix}`, startsAt: '2026-05-01T00:00:00Z' },
    });
    const receipt = await recordUsageOk(app, {
      accountId,
      feature: 'bulk_export',
      quantity: '52000',
      idempotencyKey: key(),
      timestamp: '2026-05-02T00:00:00Z',
    });
    expect(receipt).toMatchObject({ status: 'ACCEPTED', reason: 'OVERAGE' });
    const invoice = await invoicePreviewOk(app, `ctr_exp_${suffix}`, '2026-05-01T00:00:00Z');
    expect(table(invoice)).toEqual([['OVERAGE', 'bulk_export', '2000', '0.002', '4.00']]);
    expect(invoice.total).toBe('4.00');
  });
});

describe('two contracts enabling the same metered feature (R4 merge)', () => {
  it('rates the shared usage once, on the oldest contract, against the summed included amount and the lowest price', async () => {
    // Data platform: 5,000,000 rows included, $0.40 per 1,000. Add-on: $100, 1,000,000 more
    // rows, $0.30 per 1,000. Same start; the add-on's id sorts after, so it is the newer.
    const { accountId, contractId } = await dataPlatformContract(app, 'UP');
    const suffix = uniqueSuffix();
    await publishPlan(app, {
      key: `rows_addon_${suffix}`,
      name: 'Rows add-on',
      currency: 'USD',
      baseFee: '100',
      entitlements: [
        { feature: 'rows_scanned', included: '1000000', enforcement: 'SOFT', overage: { unitPrice: '0.30', per: '1000', rounding: 'UP' } },
      ],
    });
    const addonId = `${contractId}_zz_addon`;
    await gql(app, `mutation ($input: ContractInput!) { upsertContract(input: $input) { id } }`, {
      input: { id: addonId, accountId, planKey: `rows_addon_${suffix}`, startsAt: '2026-03-01T00:00:00Z' },
    });
    await recordUsageOk(app, {
      accountId,
      feature: 'rows_scanned',
      quantity: '7250500',
      idempotencyKey: key(),
      timestamp: '2026-03-10T12:00:00Z',
    });

    // 7,250,500 − 6,000,000 = 1,250,500 rows over: 1,251 blocks × $0.30 (not 2,251 × $0.40
    // here and 6,251 × $0.30 again on the add-on).
    const owner = await invoicePreviewOk(app, contractId, MARCH);
    expect(table(owner)).toEqual([
      ['BASE_FEE', null, '1', '2000.00', '2000.00'],
      ['OVERAGE', 'rows_scanned', '1251', '0.30', '375.30'],
    ]);
    expect(owner.usage).toEqual([
      expect.objectContaining({ feature: 'rows_scanned', included: '6000000', used: '7250500', overage: '1250500', unitPrice: '0.30' }),
    ]);
    expect(owner.total).toBe('2375.30');

    const addon = await invoicePreviewOk(app, addonId, MARCH);
    // The add-on rates none of it; a zero line says which invoice does.
    expect(table(addon)).toEqual([
      ['BASE_FEE', null, '1', '100.00', '100.00'],
      ['OVERAGE', 'rows_scanned', '0', null, '0.00'],
    ]);
    expect(addon.lines[1].description).toBe(`Rows scanned: shared with contract ${contractId}, whose invoice rates this usage`);
    expect(addon.usage).toEqual([]);
    expect(addon.total).toBe('100.00');
  });
});
