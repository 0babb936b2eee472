/**
 * Contract.invoicePreview over GraphQL (R11, R12): which billing periods can be previewed, and
 * a usage period that resets daily rated once per day of the billing period.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { periodContaining } from '../../src/shared/periods.js';
import { DEFINE_FEATURE, errorCode, gql, publishPlan, seedReferenceAccount } from '../support/fixtures.js';
import { startTestInstance, type TestInstance } from '../support/harness.js';
import {
  RATING_ENV,
  ROWS_SCANNED,
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
