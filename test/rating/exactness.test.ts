/**
 * R11 through the whole path (recordUsage → counters → rating → GraphQL strings): the
 * smallest quantity, and quantities and amounts far beyond what a double holds exactly.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFINE_FEATURE, gql, publishPlan, upsertContract } from '../support/fixtures.js';
import { startTestInstance, type TestInstance } from '../support/harness.js';
import { BILLING_EXPORT, RATING_ENV, invoicePreviewOk, table, uniqueSuffix } from '../support/rating-fixtures.js';
import { key, recordBatch, recordUsageOk } from '../support/usage-fixtures.js';

let app: TestInstance;
beforeAll(async () => {
  app = await startTestInstance({ env: RATING_ENV });
  await gql(app, DEFINE_FEATURE, { input: { key: 'tokens', name: 'LLM tokens', type: 'METERED', unit: 'token' } });
});
afterAll(() => app.stop());

const JULY = '2026-07-01T00:00:00.000Z';

/** A contract on a plan with nothing included and tokens priced per token, EXACT. */
async function pricedPerToken(unitPrice: string): Promise<{ accountId: string; contractId: string }> {
  const suffix = uniqueSuffix();
  await publishPlan(app, {
    key: `tokens_${suffix}`,
    name: 'Tokens',
    currency: 'USD',
    entitlements: [{ feature: 'tokens', included: '0', enforcement: 'SOFT', overage: { unitPrice, per: '1', rounding: 'EXACT' } }],
  });
  const ids = { accountId: `acct_tok_${suffix}`, contractId: `ctr_tok_${suffix}` };
  await upsertContract(app, { id: ids.contractId, accountId: ids.accountId, planKey: `tokens_${suffix}`, startsAt: JULY });
  return ids;
}

describe('exact quantities and money end to end', () => {
  it('rates a single 0.000001-unit event exactly, due as 0.00', async () => {
    const { accountId, contractId } = await pricedPerToken('1');
    await recordUsageOk(app, {
      accountId,
      feature: 'tokens',
      quantity: '0.000001',
      idempotencyKey: key(),
      timestamp: '2026-07-02T00:00:00Z',
    });
    const invoice = await invoicePreviewOk(app, contractId, JULY);
    expect(table(invoice)).toEqual([['OVERAGE', 'tokens', '0.000001', '1.00', '0.000001']]);
    // total is rounded like amountDue; the exact sum is exactTotal.
    expect([invoice.exactTotal, invoice.total, invoice.amountDue]).toEqual(['0.000001', '0.00', '0.00']);
    expect(invoice.usage[0]).toMatchObject({ used: '0.000001', overage: '0.000001' });
  });

  it('keeps a usage total above 2^53 micro-units exact to the last micro-unit, and money above 2^53 cents', async () => {
    const cheap = await pricedPerToken('1');
    const dear = await pricedPerToken('1000000');
    for (const { accountId } of [cheap, dear]) {
      // 10 × 1,000,000,000 + 0.000001 = 10,000,000,000.000001 units = 10^16 + 1 micro-units (2^53 ≈ 9.007 × 10^15).
      const events = [
        ...Array.from({ length: 10 }, () => ({
          accountId,
          feature: 'tokens',
          quantity: '1000000000',
          idempotencyKey: key(),
          timestamp: '2026-07-03T00:00:00Z',
        })),
        { accountId, feature: 'tokens', quantity: '0.000001', idempotencyKey: key(), timestamp: '2026-07-03T00:00:00Z' },
      ];
      expect((await recordBatch(app, events)).data?.recordUsageBatch.accepted).toBe(11);
    }
    const small = await invoicePreviewOk(app, cheap.contractId, JULY);
    expect(small.usage[0].used).toBe('10000000000.000001');
    expect(table(small)).toEqual([['OVERAGE', 'tokens', '10000000000.000001', '1.00', '10000000000.000001']]);
    expect([small.exactTotal, small.total, small.amountDue]).toEqual(['10000000000.000001', '10000000000.00', '10000000000.00']);

    // $1,000,000 a token: $10,000,000,000,000,001 = 10^18 + 100 cents.
    const large = await invoicePreviewOk(app, dear.contractId, JULY);
    expect([large.exactTotal, large.total, large.amountDue]).toEqual([
      '10000000000000001.00',
      '10000000000000001.00',
      '10000000000000001.00',
    ]);
    const exported = (await gql(app, BILLING_EXPORT, { contractId: dear.contractId, periodStart: JULY })).billingExport;
    expect(exported.amountDueMinor).toBe('1000000000000000100');
    expect(exported.lines[0].amountMinor).toBe('1000000000000000100');
  });
});
