/**
 * Contract.invoicePreview over GraphQL (R11, R12): the hand-computed tables reproduced to
 * the cent from usage recorded with recordUsage, grants issued with issueGrant and a plan
 * change made with changeContractPlan.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { periodContaining } from '../../src/shared/periods.js';
import { DEFINE_FEATURE, errorCode, gql, publishPlan, seedReferenceAccount } from '../support/fixtures.js';
import { signToken, startTestInstance, type TestInstance } from '../support/harness.js';
import {
  CHANGE_PLAN,
  ISSUE_GRANT,
  RATING_ENV,
  ROWS_SCANNED,
  SCALE_PLAN,
  dataPlatformContract,
  invoicePreview,
  invoicePreviewOk,
  table,
  uniqueSuffix,
} from '../support/rating-fixtures.js';
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

describe('the API company (acct_4821): growth at $499 with 10M calls and $0.20 per 1,000, a 500,000-call credit, upgraded mid-cycle', () => {
  // Anchor 2026-01-31: the billing period 2026-03-31 → 2026-04-30 is 30 days. The upgrade to
  // scale ($1,499, 15M calls included) takes effect on 2026-04-15, halfway through.
  const APRIL = '2026-03-31T00:00:00.000Z';
  let grantId: string;

  beforeAll(async () => {
    await publishPlan(app, SCALE_PLAN);
    await gql(app, CHANGE_PLAN, { contractId: 'ctr_4821', planKey: 'scale', effectiveAt: '2026-04-15T00:00:00Z' });
    const record = (feature: string, quantity: string, timestamp: string) =>
      recordUsageOk(app, { accountId: 'acct_4821', feature, quantity, idempotencyKey: key(), timestamp });
    // 9,000,000 calls on growth (within its HARD 10M), 7,100,500 more on scale: 16,100,500.
    expect((await record('api_calls', '9000000', '2026-04-05T10:00:00Z')).status).toBe('ACCEPTED');
    expect((await record('api_calls', '7100500', '2026-04-20T10:00:00Z')).status).toBe('ACCEPTED');
    // 52,000 exports: 2,000 beyond 50,000 at $0.002 each.
    expect((await record('bulk_export', '52000', '2026-04-05T10:00:00Z')).status).toBe('ACCEPTED');
    // A prepaid credit of 500,000 calls, from the period's first instant.
    const grant = await gql(app, ISSUE_GRANT, {
      input: {
        accountId: 'acct_4821',
        feature: 'api_calls',
        amount: '500000',
        kind: 'PREPAID',
        reason: 'Prepaid calls pack',
        idempotencyKey: 'pack-1',
        effectiveAt: APRIL,
      },
    });
    grantId = grant.issueGrant.id;
  });

  it('prorates the base fees, bills overage beyond the new included amount, and credits what the grant covered', async () => {
    const invoice = await invoicePreviewOk(app, 'ctr_4821', APRIL);
    expect(table(invoice)).toEqual([
      // 15 of 30 days on each plan.
      ['BASE_FEE', null, '0.5', '499.00', '249.50'],
      ['BASE_FEE', null, '0.5', '1499.00', '749.50'],
      // Scale governs the whole period (R3): 16,100,500 − 15,000,000 = 1,100,500 → 1,101 blocks.
      ['OVERAGE', 'api_calls', '1101', '0.20', '220.20'],
      // The grant covered 500,000 of them: 600,500 left → 601 blocks, so 500 blocks come back.
      ['CREDIT', 'api_calls', '500', '-0.20', '-100.00'],
      ['OVERAGE', 'bulk_export', '2', '2.00', '4.00'],
    ]);
    // 249.50 + 749.50 + 220.20 − 100.00 + 4.00
    expect([invoice.total, invoice.amountDue]).toEqual(['1123.20', '1123.20']);
    expect(
      invoice.lines.slice(0, 2).map((line: any) => [line.planKey, line.planVersion, line.prorated, line.periodStart, line.periodEnd]),
    ).toEqual([
      ['growth', 1, true, APRIL, '2026-04-15T00:00:00.000Z'],
      ['scale', 1, true, '2026-04-15T00:00:00.000Z', '2026-04-30T00:00:00.000Z'],
    ]);
    // Proration in days; the credit named by the grant's reason.
    expect(invoice.lines[0].description).toBe(
      'Growth (growth v1) base fee, 2026-03-31 to 2026-04-15: prorated 15 of 30 days of 499.00 USD',
    );
    expect(invoice.lines[3].description).toBe('API calls credit: 500,000 covered by Prepaid calls pack (prepaid), 500 × 1,000 at 0.20 USD');
    expect(invoice.usage).toEqual([
      expect.objectContaining({
        feature: 'api_calls',
        included: '15000000',
        granted: '500000',
        used: '16100500',
        coveredByIncluded: '15000000',
        coveredByGrants: '500000',
        overage: '600500',
        grossBlocks: '1101',
        netBlocks: '601',
        amount: '120.20',
        grants: [{ grantId, kind: 'PREPAID', units: '500000' }],
      }),
      expect.objectContaining({
        feature: 'bulk_export',
        included: '50000',
        used: '52000',
        overage: '2000',
        grossBlocks: '2',
        amount: '4.00',
      }),
    ]);
  });

  it('charges the month before the upgrade on growth alone, grace usage as overage', async () => {
    // Growth is HARD at 10M with 100,000 of grace: 10,050,500 calls are allowed, 50,500 beyond → 51 blocks.
    const calls = (quantity: string) =>
      recordUsageOk(app, {
        accountId: 'acct_4821',
        feature: 'api_calls',
        quantity,
        idempotencyKey: key(),
        timestamp: '2026-03-10T00:00:00Z',
      });
    expect((await calls('10000000')).reason).toBe('INCLUDED');
    expect((await calls('50500')).reason).toBe('WITHIN_GRACE');
    const march = await invoicePreviewOk(app, 'ctr_4821', '2026-02-28T00:00:00Z');
    expect(table(march)).toEqual([
      ['BASE_FEE', null, '1', '499.00', '499.00'],
      ['OVERAGE', 'api_calls', '51', '0.20', '10.20'],
      // No exports: the feature is still on the invoice, at 0.
      ['OVERAGE', 'bulk_export', '0', '2.00', '0.00'],
    ]);
    expect(march.lines[2].description).toBe('Bulk exports: 0 used, within 50,000 included');
    expect(march.total).toBe('509.20');
    expect(march.usage.map((usage: any) => [usage.feature, usage.included, usage.granted, usage.used, usage.overage])).toEqual([
      ['api_calls', '10000000', '0', '10050500', '50500'],
      ['bulk_export', '50000', '0', '0', '0'],
    ]);
  });

  it('previews the current billing period when periodStart is omitted', async () => {
    const current = periodContaining(new Date('2026-01-31T00:00:00Z'), 'MONTH', new Date());
    const invoice = await invoicePreviewOk(app, 'ctr_4821');
    expect([invoice.periodStart, invoice.periodEnd]).toEqual([current.start.toISOString(), current.end!.toISOString()]);
    expect(table(invoice)).toEqual([
      ['BASE_FEE', null, '1', '1499.00', '1499.00'],
      ['OVERAGE', 'api_calls', '0', '0.20', '0.00'],
      ['OVERAGE', 'bulk_export', '0', '2.00', '0.00'],
    ]);
  });

  it('shows customers the preview of their own contract only', async () => {
    const own = await signToken({ sub: 'user_4821', scope: 'entitlements:read', account_id: 'acct_4821' });
    const other = await signToken({ sub: 'user_x', scope: 'entitlements:read', account_id: 'acct_other' });
    expect((await invoicePreview(app, 'ctr_4821', APRIL, { token: own })).data?._entities[0].invoicePreview.total).toBe('1123.20');
    expect(errorCode(await invoicePreview(app, 'ctr_4821', APRIL, { token: other }))).toBe('FORBIDDEN');
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

describe('periods', () => {
  it('refuses a periodStart that is not a period boundary, naming the nearest ones', async () => {
    const { contractId } = await dataPlatformContract(app, 'UP');
    const response = await invoicePreview(app, contractId, '2026-03-15T00:00:00Z');
    expect(errorCode(response)).toBe('BAD_USER_INPUT');
    expect(response.errors![0]!.message).toBe(
      `periodStart 2026-03-15T00:00:00.000Z is not the start of a billing period of contract "${contractId}" (monthly, anchored at 2026-03-01T00:00:00.000Z); the nearest are 2026-03-01T00:00:00.000Z and 2026-04-01T00:00:00.000Z.`,
    );
  });

  it('refuses a period that has not started, and one outside the contract', async () => {
    const { contractId } = await dataPlatformContract(app, 'UP');
    const future = periodContaining(new Date('2026-03-01T00:00:00Z'), 'MONTH', new Date(Date.now() + 40 * 86_400_000)).start.toISOString();
    expect(errorCode(await invoicePreview(app, contractId, future))).toBe('BAD_USER_INPUT');
    const before = await invoicePreview(app, contractId, '2026-02-01T00:00:00Z');
    expect(errorCode(before)).toBe('BAD_USER_INPUT');
    expect(before.errors![0]!.message).toContain('is not in force between 2026-02-01T00:00:00.000Z and 2026-03-01T00:00:00.000Z');
  });

  it('rates a usage period that resets daily once per day of the billing period', async () => {
    const suffix = uniqueSuffix();
    await publishPlan(app, {
      key: `daily_${suffix}`,
      name: 'Daily',
      currency: 'USD',
      baseFee: '30',
      entitlements: [
        {
          feature: 'rows_scanned',
          included: '100',
          resetPeriod: 'DAY',
          enforcement: 'SOFT',
          overage: { unitPrice: '1', per: '10', rounding: 'UP' },
        },
      ],
    });
    const accountId = `acct_daily_${suffix}`;
    await gql(app, `mutation ($input: ContractInput!) { upsertContract(input: $input) { id } }`, {
      input: { id: `ctr_daily_${suffix}`, accountId, planKey: `daily_${suffix}`, startsAt: '2026-06-01T00:00:00Z' },
    });
    // Day 1: 105 → 5 over → 1 block; day 2: 100 → none; day 30: 121 → 21 over → 3 blocks.
    for (const [quantity, timestamp] of [
      ['105', '2026-06-01T05:00:00Z'],
      ['100', '2026-06-02T05:00:00Z'],
      ['121', '2026-06-30T23:00:00Z'],
    ]) {
      await recordUsageOk(app, { accountId, feature: 'rows_scanned', quantity: quantity!, idempotencyKey: key(), timestamp: timestamp! });
    }
    const invoice = await invoicePreviewOk(app, `ctr_daily_${suffix}`, '2026-06-01T00:00:00Z');
    expect(table(invoice)).toEqual([
      ['BASE_FEE', null, '1', '30.00', '30.00'],
      ['OVERAGE', 'rows_scanned', '1', '1.00', '1.00'],
      // Day 2 stayed within its 100 included: on the invoice at 0. Days without usage are not listed.
      ['OVERAGE', 'rows_scanned', '0', '1.00', '0.00'],
      ['OVERAGE', 'rows_scanned', '3', '1.00', '3.00'],
    ]);
    expect(invoice.usage).toHaveLength(30);
    expect(invoice.lines.slice(1).map((line: any) => line.periodStart)).toEqual([
      '2026-06-01T00:00:00.000Z',
      '2026-06-02T00:00:00.000Z',
      '2026-06-30T00:00:00.000Z',
    ]);
    expect(invoice.total).toBe('34.00');
  });
});
