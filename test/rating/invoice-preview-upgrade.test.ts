/**
 * Contract.invoicePreview over GraphQL (R11, R12): the reference account's hand-computed table
 * reproduced to the cent from usage recorded with recordUsage, a grant issued with issueGrant
 * and a mid-cycle plan change made with changeContractPlan.
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
  invoicePreview,
  invoicePreviewOk,
  table,
} from '../support/rating-fixtures.js';
import { key, recordUsageOk } from '../support/usage-fixtures.js';

let app: TestInstance;
beforeAll(async () => {
  app = await startTestInstance({ env: RATING_ENV });
  await seedReferenceAccount(app);
  await gql(app, DEFINE_FEATURE, { input: ROWS_SCANNED });
});
afterAll(() => app.stop());

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
