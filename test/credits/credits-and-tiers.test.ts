/**
 * Issue 15, credits and tiers together on one invoice (R14 + R15), over GraphQL: a credit
 * feature with a GRADUATED tiered overage, two features burning it, a VOLUME-tiered metered
 * feature, a base fee and a priced auto top-up, rated against a table computed by hand.
 *
 * The plan (USD):
 *   base fee 500
 *   ai_credits   100,000 included, SOFT, GRADUATED: 0-20,000 at 0.01; 20,000-100,000 at 0.008
 *                + 25 flat; above at 0.005
 *   gpt_large    burns 2.5 ai_credits a unit;  gpt_small burns 0.1
 *   embeddings   1,000 included, SOFT, VOLUME: 0-5,000 at 0.02; 5,000-50,000 at 0.015 + 10 flat;
 *                above at 0.01
 *   auto top-up  below 10,000 credits left: +50,000 credits for 49.00
 *
 * Usage, in order:
 *   gpt_large 36,000 × 2.5 = 90,000 credits; gpt_small 20,000 × 0.1 = 2,000   → 92,000 used, 8,000 left
 *   setAutoTopUp: 8,000 < 10,000 left, so one top-up at once (+50,000; capacity 150,000); then disabled,
 *     so the overage below is billed rather than topped up again
 *   gpt_large 30,000 × 2.5 = 75,000; gpt_small 200,003 × 0.1 = 20,000.3      → 187,000.3 credits used
 *   embeddings 13,000                                                          → 12,000 beyond 1,000
 *
 * ai_credits: 187,000.3 used − 100,000 included − 50,000 top-up = 37,000.3 billable credits
 *   tier 1  20,000 × 0.01                          = 200.00
 *   tier 2  17,000.3 × 0.008 = 136.0024 + 25       = 161.0024 (exact, R11)
 *   line                                            = 361.0024
 * embeddings: 12,000 billable falls in tier 2, all of it at 0.015: 180 + 10 = 190.00
 *
 * | kind     | feature    | quantity | unit price | amount   |
 * | -------- | ---------- | -------- | ---------- | -------- |
 * | BASE_FEE |            | 1        | 500.00     | 500.00   |
 * | OVERAGE  | ai_credits | 37000.3  | (tiers)    | 361.0024 |
 * | TOP_UP   | ai_credits | 1        | 49.00      | 49.00    |
 * | OVERAGE  | embeddings | 12000    | (tiers)    | 190.00   |
 * | total    |            |          |            | 1,100.00 | (exact 1,100.0024, rounded to the cent)
 *
 * gpt_large and gpt_small have no line of their own: their usage is ai_credits'.
 *
 * An auto top-up is issued now, so it lands in the current period, which cannot be finalised
 * before it ends. The finalised case runs the same table in September 2026 with the 50,000
 * credits as a free PREPAID grant instead (no TOP_UP line): total 1,051.00 (exact 1,051.0024).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFINE_FEATURE, gql, publishPlan, upsertContract } from '../support/fixtures.js';
import { startTestInstance, type TestInstance } from '../support/harness.js';
import { ISSUE_GRANT, RATING_ENV, finalizeInvoiceOk, table, uniqueSuffix } from '../support/rating-fixtures.js';
import { key, recordUsageOk } from '../support/usage-fixtures.js';
import { creditEntitlement, defineAiFeatures, SET_AUTO_TOP_UP } from './fixtures.js';

const PREVIEW = `query ($id: ID!, $periodStart: DateTime) {
  _entities(representations: [{ __typename: "Contract", id: $id }]) { ... on Contract { invoicePreview(periodStart: $periodStart) {
    total exactTotal amountDue final
    lines { id kind feature quantity unitPrice amount tiers { tier from upTo units unitPrice flatFee amount } }
    usage { feature used coveredByIncluded coveredByGrants overage model amount } } } } }`;

const CREDIT_TIERS = [{ upTo: '20000', unitPrice: '0.01' }, { upTo: '100000', unitPrice: '0.008', flatFee: '25' }, { unitPrice: '0.005' }];
const VOLUME_TIERS = [{ upTo: '5000', unitPrice: '0.02' }, { upTo: '50000', unitPrice: '0.015', flatFee: '10' }, { unitPrice: '0.01' }];

const CREDIT_LINE_TIERS = [
  { tier: 1, from: '0', upTo: '20000', units: '20000', unitPrice: '0.01', flatFee: '0.00', amount: '200.00' },
  { tier: 2, from: '20000', upTo: '100000', units: '17000.3', unitPrice: '0.008', flatFee: '25.00', amount: '161.0024' },
];
const VOLUME_LINE_TIERS = [
  { tier: 2, from: '5000', upTo: '50000', units: '12000', unitPrice: '0.015', flatFee: '10.00', amount: '190.00' },
];

const BASE_FEE = ['BASE_FEE', null, '1', '500.00', '500.00'];
const CREDITS_OVERAGE = ['OVERAGE', 'ai_credits', '37000.3', null, '361.0024'];
const TOP_UP = ['TOP_UP', 'ai_credits', '1', '49.00', '49.00'];
const EMBEDDINGS_OVERAGE = ['OVERAGE', 'embeddings', '12000', null, '190.00'];

let app: TestInstance;
beforeAll(async () => {
  app = await startTestInstance({ env: RATING_ENV });
  await defineAiFeatures(app);
  await gql(app, DEFINE_FEATURE, { input: { key: 'embeddings', name: 'Embeddings', type: 'METERED', unit: 'vector' } });
});
afterAll(() => app?.stop());

async function creditsAndTiersContract(startsAt: string) {
  const suffix = uniqueSuffix();
  const planKey = `ai_tiers_${suffix}`;
  await publishPlan(app, {
    key: planKey,
    name: 'AI with tiers',
    currency: 'USD',
    baseFee: '500',
    entitlements: [
      { feature: 'ai_credits', included: '100000', enforcement: 'SOFT', overage: { model: 'GRADUATED', tiers: CREDIT_TIERS } },
      { feature: 'gpt_large', credits: { feature: 'ai_credits', perUnit: '2.5' } },
      { feature: 'gpt_small', credits: { feature: 'ai_credits', perUnit: '0.1' } },
      { feature: 'embeddings', included: '1000', enforcement: 'SOFT', overage: { model: 'VOLUME', tiers: VOLUME_TIERS } },
    ],
  });
  const accountId = `acct_ait_${suffix}`;
  const contractId = `ctr_ait_${suffix}`;
  await upsertContract(app, { id: contractId, accountId, planKey, startsAt });
  const use = async (feature: string, quantity: string, timestamp?: string) => {
    const receipt = await recordUsageOk(app, { accountId, feature, quantity, idempotencyKey: key(), ...(timestamp ? { timestamp } : {}) });
    expect(receipt.status).toBe('ACCEPTED');
  };
  return { accountId, contractId, use };
}

async function preview(contractId: string, periodStart?: string) {
  return (await gql(app, PREVIEW, { id: contractId, periodStart }))._entities[0].invoicePreview;
}

/** The invoice of the table: the lines, the tiers of each tiered line, nothing for the burning features. */
function expectTable(invoice: any, lines: unknown[], total: string, exactTotal: string) {
  expect(table(invoice)).toEqual(lines);
  const overage = (feature: string) => invoice.lines.find((line: any) => line.kind === 'OVERAGE' && line.feature === feature);
  expect(overage('ai_credits').tiers).toEqual(CREDIT_LINE_TIERS);
  expect(overage('embeddings').tiers).toEqual(VOLUME_LINE_TIERS);
  expect([invoice.total, invoice.exactTotal, invoice.amountDue]).toEqual([total, exactTotal, total]);
  for (const burning of ['gpt_large', 'gpt_small']) {
    expect(invoice.lines.map((line: any) => line.feature)).not.toContain(burning);
    expect(invoice.usage.map((entry: any) => entry.feature)).not.toContain(burning);
  }
  expect(invoice.usage.find((entry: any) => entry.feature === 'ai_credits')).toMatchObject({
    used: '187000.3',
    coveredByIncluded: '100000',
    coveredByGrants: '50000',
    overage: '37000.3',
    model: 'GRADUATED',
    amount: '361.0024',
  });
  expect(invoice.usage.find((entry: any) => entry.feature === 'embeddings')).toMatchObject({
    used: '13000',
    coveredByIncluded: '1000',
    overage: '12000',
    model: 'VOLUME',
    amount: '190.00',
  });
}

describe('credits and tiers together on one invoice (issue 15)', () => {
  it('rates the current period as the hand-computed table: base fee, tiered credits, the priced top-up, volume tiers', async () => {
    const { accountId, contractId, use } = await creditsAndTiersContract('2026-01-01T00:00:00Z');
    await use('gpt_large', '36000');
    await use('gpt_small', '20000');
    expect(await creditEntitlement(app, accountId, 'ai_credits')).toMatchObject({ used: '92000', remaining: '8000' });

    const setting = { accountId, feature: 'ai_credits', below: '10000', amount: '50000', price: '49.00' };
    await gql(app, SET_AUTO_TOP_UP, { input: setting });
    expect(await creditEntitlement(app, accountId, 'ai_credits')).toMatchObject({
      granted: '50000',
      capacity: '150000',
      remaining: '58000',
    });
    // Off from here on, or the overage below would be topped up rather than billed.
    await gql(app, SET_AUTO_TOP_UP, { input: { ...setting, enabled: false } });
    await new Promise((resolve) => setTimeout(resolve, 500)); // an evaluation already running finishes

    await use('gpt_large', '30000');
    await use('gpt_small', '200003');
    await use('embeddings', '13000');
    expect(await creditEntitlement(app, accountId, 'ai_credits')).toMatchObject({ used: '187000.3', remaining: '0' });
    expect(await app.database.db.collection('grants').countDocuments({ accountId })).toBe(1);

    const invoice = await preview(contractId);
    expectTable(invoice, [BASE_FEE, CREDITS_OVERAGE, TOP_UP, EMBEDDINGS_OVERAGE], '1100.00', '1100.0024');
    expect(invoice.final).toBe(false);
  });

  it('finalises the same table in a closed period, the 50,000 credits a free PREPAID grant instead of a top-up', async () => {
    const SEPTEMBER = '2026-09-01T00:00:00.000Z';
    const at = '2026-09-10T00:00:00Z';
    const { accountId, contractId, use } = await creditsAndTiersContract(SEPTEMBER);
    await use('gpt_large', '36000', at);
    await use('gpt_small', '20000', at);
    await gql(app, ISSUE_GRANT, {
      input: {
        accountId,
        feature: 'ai_credits',
        amount: '50000',
        reason: 'Top-up',
        kind: 'PREPAID',
        idempotencyKey: key(),
        effectiveAt: SEPTEMBER,
      },
    });
    await use('gpt_large', '30000', at);
    await use('gpt_small', '200003', at);
    await use('embeddings', '13000', at);

    const expected = [BASE_FEE, CREDITS_OVERAGE, EMBEDDINGS_OVERAGE];
    const live = await preview(contractId, SEPTEMBER);
    expectTable(live, expected, '1051.00', '1051.0024');
    const final = await finalizeInvoiceOk(app, contractId, SEPTEMBER);
    expect(table(final)).toEqual(expected);
    expect([final.total, final.amountDue]).toEqual(['1051.00', '1051.00']);
    const frozen = await preview(contractId, SEPTEMBER);
    expect(frozen.final).toBe(true);
    expectTable(frozen, expected, '1051.00', '1051.0024');
    expect(frozen.lines.map((line: any) => line.id)).toEqual(live.lines.map((line: any) => line.id));
  });
});
