/**
 * R15 over GraphQL: tiered overage prices and minimum commits, from publishPlan through a
 * contract and recordUsage to invoicePreview and finalizeInvoice, on the real wire protocol.
 *
 * The tier tables are Stripe's, "Set up tiered pricing"
 * (https://docs.stripe.com/subscriptions/pricing-models/tiered-pricing): fonts 1-5 at
 * 7 USD, 6-10 at 6.50 USD, 11+ at 6 USD. Volume-based, 20 fonts cost 120 USD (documented);
 * graduated, 20 fonts cost 5 × 7 + 5 × 6.50 + 10 × 6 = 127.50 USD (the documented rule).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACCOUNT_ENTITLEMENT, DEFINE_FEATURE, errorCode, gql, upsertContract } from '../support/fixtures.js';
import { startTestInstance, type TestInstance } from '../support/harness.js';
import { CHANGE_PLAN, ISSUE_GRANT, RATING_ENV, finalizeInvoiceOk, table, uniqueSuffix } from '../support/rating-fixtures.js';
import { key, recordUsageOk } from '../support/usage-fixtures.js';

const FONTS = { key: 'fonts', name: 'Fonts', type: 'METERED', unit: 'font' } as const;
const TYPOGRAPHIC = [{ upTo: '5', unitPrice: '7' }, { upTo: '10', unitPrice: '6.50' }, { unitPrice: '6' }];

const PLAN_FIELDS = `key version currency baseFee minimumCommit
  entitlements { feature { key } overage { unitPrice per rounding model tiers { upTo unitPrice flatFee } } }`;
const PUBLISH = `mutation ($input: PlanInput!) { publishPlan(input: $input) { ${PLAN_FIELDS} } }`;
const PLAN = `query ($key: ID!) { plan(key: $key) { ${PLAN_FIELDS} } }`;
const SET_OVERRIDE = `mutation ($contractId: ID!, $input: EntitlementOverrideInput!) {
  setEntitlementOverride(contractId: $contractId, input: $input) { id overrides { feature overage { model tiers { upTo unitPrice flatFee } } } } }`;
const PREVIEW = `query ($id: ID!, $periodStart: DateTime) {
  _entities(representations: [{ __typename: "Contract", id: $id }]) { ... on Contract { invoicePreview(periodStart: $periodStart) {
    total exactTotal amountDue final
    lines { id kind feature description quantity unitPrice amount planKey prorated tiers { tier from upTo units unitPrice flatFee amount } }
    usage { feature overage unitPrice model tiers { upTo unitPrice flatFee } amount }
    pendingCorrections { lateUnits overageUnits amount } } } } }`;

let app: TestInstance;
beforeAll(async () => {
  app = await startTestInstance({ env: RATING_ENV });
  await gql(app, DEFINE_FEATURE, { input: FONTS });
});
afterAll(() => app.stop());

const SEPTEMBER = '2026-09-01T00:00:00.000Z';

async function preview(contractId: string, periodStart = SEPTEMBER) {
  return (await gql(app, PREVIEW, { id: contractId, periodStart }))._entities[0].invoicePreview;
}

/** A plan with the fonts feature priced as given (SOFT, 100 included), and a contract on it from September. */
async function fontsContract(overage: Record<string, unknown>, plan: Record<string, unknown> = {}) {
  const suffix = uniqueSuffix();
  const planKey = `fonts_${suffix}`;
  const published = (
    await gql(app, PUBLISH, {
      input: {
        key: planKey,
        name: 'Fonts',
        currency: 'USD',
        baseFee: null,
        entitlements: [{ feature: 'fonts', included: '100', enforcement: 'SOFT', overage }],
        ...plan,
      },
    })
  ).publishPlan;
  const accountId = `acct_fonts_${suffix}`;
  const contractId = `ctr_fonts_${suffix}`;
  await upsertContract(app, { id: contractId, accountId, planKey, startsAt: SEPTEMBER });
  const use = (quantity: string, timestamp = '2026-09-10T00:00:00Z') =>
    recordUsageOk(app, { accountId, feature: 'fonts', quantity, idempotencyKey: key(), timestamp });
  return { planKey, accountId, contractId, published, use };
}

describe('tiered overage through GraphQL', () => {
  it('publishes GRADUATED tiers exactly and reads them back on the plan', async () => {
    const { planKey, published } = await fontsContract({ model: 'GRADUATED', tiers: TYPOGRAPHIC });
    const overage = {
      unitPrice: '7',
      per: '1',
      rounding: 'EXACT',
      model: 'GRADUATED',
      tiers: [
        { upTo: '5', unitPrice: '7', flatFee: '0' },
        { upTo: '10', unitPrice: '6.5', flatFee: '0' },
        { upTo: null, unitPrice: '6', flatFee: '0' },
      ],
    };
    expect(published.entitlements[0].overage).toEqual(overage);
    expect((await gql(app, PLAN, { key: planKey })).plan.entitlements[0].overage).toEqual(overage);
  });

  it('bills 20 billable fonts GRADUATED at 127.50 with each tier on the line, and VOLUME at 120.00', async () => {
    const graduated = await fontsContract({ model: 'GRADUATED', tiers: TYPOGRAPHIC });
    const volume = await fontsContract({ model: 'VOLUME', tiers: TYPOGRAPHIC });
    for (const { use } of [graduated, volume]) {
      await use('90');
      await use('30'); // 120 used: 20 beyond the 100 included
    }
    const g = await preview(graduated.contractId);
    expect(table(g)).toEqual([['OVERAGE', 'fonts', '20', null, '127.50']]);
    expect(g.lines[0].tiers).toEqual([
      { tier: 1, from: '0', upTo: '5', units: '5', unitPrice: '7.00', flatFee: '0.00', amount: '35.00' },
      { tier: 2, from: '5', upTo: '10', units: '5', unitPrice: '6.50', flatFee: '0.00', amount: '32.50' },
      { tier: 3, from: '10', upTo: null, units: '10', unitPrice: '6.00', flatFee: '0.00', amount: '60.00' },
    ]);
    expect(g.usage[0]).toMatchObject({ overage: '20', unitPrice: null, model: 'GRADUATED', amount: '127.50' });
    expect(g.total).toBe('127.50');

    const v = await preview(volume.contractId);
    expect(table(v)).toEqual([['OVERAGE', 'fonts', '20', null, '120.00']]);
    expect(v.lines[0].tiers).toEqual([
      { tier: 3, from: '10', upTo: null, units: '20', unitPrice: '6.00', flatFee: '0.00', amount: '120.00' },
    ]);
  });

  it('freezes a tiered invoice on finalisation and prices late usage with the frozen tiers', async () => {
    const { contractId, use } = await fontsContract({ model: 'GRADUATED', tiers: TYPOGRAPHIC });
    await use('120');
    const final = await finalizeInvoiceOk(app, contractId, SEPTEMBER);
    expect(table(final)).toEqual([['OVERAGE', 'fonts', '20', null, '127.50']]);
    const frozen = await preview(contractId);
    expect(frozen.final).toBe(true);
    expect(frozen.lines[0].tiers.map((tier: any) => tier.amount)).toEqual(['35.00', '32.50', '60.00']);
    expect(frozen.usage[0].tiers).toEqual([
      { upTo: '5', unitPrice: '7', flatFee: '0' },
      { upTo: '10', unitPrice: '6.5', flatFee: '0' },
      { upTo: null, unitPrice: '6', flatFee: '0' },
    ]);
    // 5 late fonts: 25 billable cost 157.50, 30.00 more than the frozen 127.50.
    expect((await use('5', '2026-09-20T00:00:00Z')).late).toBe(true);
    expect((await preview(contractId)).pendingCorrections).toEqual([{ lateUnits: '5', overageUnits: '5', amount: '30.00' }]);
  });

  it('applies tiers after the grants: 126 used, 100 included, a 20-font grant, so 6 billable: 35 + 6.50 = 41.50', async () => {
    const { accountId, contractId, use } = await fontsContract({ model: 'GRADUATED', tiers: TYPOGRAPHIC });
    await gql(app, ISSUE_GRANT, {
      input: { accountId, feature: 'fonts', amount: '20', reason: 'Launch bonus', idempotencyKey: key(), effectiveAt: SEPTEMBER },
    });
    await use('126');
    const invoice = await preview(contractId);
    expect(table(invoice)).toEqual([['OVERAGE', 'fonts', '6', null, '41.50']]);
    expect(invoice.lines[0].description).toContain('20 covered by Launch bonus (promotional), 6 billable');
  });

  it('charges no flat fee while nothing is billable, then the tier fee once reached', async () => {
    const { contractId, use } = await fontsContract({
      model: 'GRADUATED',
      tiers: [
        { upTo: '10', unitPrice: '0', flatFee: '25' },
        { unitPrice: '2', flatFee: '10' },
      ],
    });
    await use('100');
    expect(table(await preview(contractId))).toEqual([['OVERAGE', 'fonts', '0', null, '0.00']]);
    await use('12'); // 12 billable: 25 + 2 × 2 + 10
    const invoice = await preview(contractId);
    expect(table(invoice)).toEqual([['OVERAGE', 'fonts', '12', null, '39.00']]);
    expect(invoice.lines[0].tiers.map((tier: any) => [tier.tier, tier.units, tier.flatFee, tier.amount])).toEqual([
      [1, '10', '25.00', '25.00'],
      [2, '2', '10.00', '14.00'],
    ]);
  });

  it('reports Entitlement.overagePrice as the price of the next billable unit', async () => {
    const { accountId, use } = await fontsContract({ model: 'GRADUATED', tiers: TYPOGRAPHIC });
    const price = async () =>
      (await gql(app, ACCOUNT_ENTITLEMENT, { id: accountId, feature: 'fonts', at: '2026-09-20T00:00:00Z' }))._entities[0].entitlement
        .overagePrice;
    await use('100');
    expect(await price()).toBe('7');
    await use('5'); // 5 billable: the 6th is in tier 2
    expect(await price()).toBe('6.5');
    await use('5');
    expect(await price()).toBe('6');
  });

  it.each([
    [
      'an unbounded tier before the last',
      { model: 'GRADUATED', tiers: [{ unitPrice: '1' }, { upTo: '5', unitPrice: '1' }] },
      'entitlements[0].overage.tiers[0].upTo',
    ],
    [
      'tiers not ascending',
      { model: 'VOLUME', tiers: [{ upTo: '5', unitPrice: '1' }, { upTo: '5', unitPrice: '1' }, { unitPrice: '1' }] },
      'entitlements[0].overage.tiers[1].upTo',
    ],
    [
      'a flat fee below the cent',
      { model: 'VOLUME', tiers: [{ unitPrice: '1', flatFee: '0.001' }] },
      'entitlements[0].overage.tiers[0].flatFee',
    ],
    ['tiers on PER_UNIT', { unitPrice: '1', tiers: TYPOGRAPHIC }, 'entitlements[0].overage.tiers'],
    ['PER_UNIT without unitPrice', { per: '10' }, 'entitlements[0].overage.unitPrice'],
  ])('refuses a plan with %s as BAD_USER_INPUT naming the field, publishing nothing', async (_name, overage, field) => {
    const planKey = `fonts_bad_${uniqueSuffix()}`;
    const response = await app.graphql(PUBLISH, {
      input: { key: planKey, name: 'Bad', currency: 'USD', entitlements: [{ feature: 'fonts', included: '1', overage }] },
    });
    expect(errorCode(response)).toBe('BAD_USER_INPUT');
    expect(response.errors![0]!.extensions!.field).toBe(field);
    expect((await gql(app, PLAN, { key: planKey })).plan).toBeNull();
  });

  it('validates tiers in a contract override the same way, flat fees in the contract’s currency', async () => {
    const { contractId } = await fontsContract({ unitPrice: '1' });
    const refused = await app.graphql(SET_OVERRIDE, {
      contractId,
      input: { feature: 'fonts', overage: { model: 'GRADUATED', tiers: [{ upTo: '5', unitPrice: '1' }] } },
    });
    expect(errorCode(refused)).toBe('BAD_USER_INPUT');
    expect(refused.errors![0]!.extensions!.field).toBe('input.overage.tiers[0].upTo');
    const subCent = await app.graphql(SET_OVERRIDE, {
      contractId,
      input: { feature: 'fonts', overage: { model: 'VOLUME', tiers: [{ unitPrice: '1', flatFee: '0.125' }] } },
    });
    expect(errorCode(subCent)).toBe('BAD_USER_INPUT');
    expect(subCent.errors![0]!.extensions!.field).toBe('input.overage.tiers[0].flatFee');
    const set = await gql(app, SET_OVERRIDE, { contractId, input: { feature: 'fonts', overage: { model: 'VOLUME', tiers: TYPOGRAPHIC } } });
    expect(set.setEntitlementOverride.overrides[0].overage.model).toBe('VOLUME');
  });
});

describe('minimum commit through GraphQL: 3,000 a month on a 1,000 base fee, fonts at 1.00 beyond 100', () => {
  const plan = { baseFee: '1000', minimumCommit: '3000.00' };

  it.each([
    // fonts used, lines, total
    [
      '1600',
      [
        ['BASE_FEE', null, '1', '1000.00', '1000.00'],
        ['OVERAGE', 'fonts', '1500', '1.00', '1500.00'],
        ['MINIMUM_COMMIT', null, '1', '500.00', '500.00'],
      ],
      '3000.00',
    ],
    [
      '2100',
      [
        ['BASE_FEE', null, '1', '1000.00', '1000.00'],
        ['OVERAGE', 'fonts', '2000', '1.00', '2000.00'],
      ],
      '3000.00',
    ],
    [
      '2700',
      [
        ['BASE_FEE', null, '1', '1000.00', '1000.00'],
        ['OVERAGE', 'fonts', '2600', '1.00', '2600.00'],
      ],
      '3600.00',
    ],
  ])('with %s fonts used the invoice reads as its hand-computed table', async (used, lines, total) => {
    const { contractId, use, published } = await fontsContract({ unitPrice: '1' }, plan);
    expect(published.minimumCommit).toBe('3000');
    await use(used);
    const invoice = await preview(contractId);
    expect(table(invoice)).toEqual(lines);
    expect(invoice.total).toBe(total);
  });

  it('prorates the floor with the base fee on a mid-period plan change, one line, and freezes it on finalisation', async () => {
    // September is 30 days; on 2026-09-16 the contract moves to a plan with a 2,000 base fee
    // and a 6,000 floor. Base fees 500 + 1,000; floor 1,500 + 3,000 = 4,500; 1,200 billable fonts.
    const { contractId, use } = await fontsContract({ unitPrice: '1' }, plan);
    const bigger = `fonts_big_${uniqueSuffix()}`;
    await gql(app, PUBLISH, {
      input: {
        key: bigger,
        name: 'Fonts big',
        currency: 'USD',
        baseFee: '2000',
        minimumCommit: '6000',
        entitlements: [{ feature: 'fonts', included: '100', enforcement: 'SOFT', overage: { unitPrice: '1' } }],
      },
    });
    await gql(app, CHANGE_PLAN, { contractId, planKey: bigger, effectiveAt: '2026-09-16T00:00:00Z' });
    await use('1300');
    const expected = [
      ['BASE_FEE', null, '0.5', '1000.00', '500.00'],
      ['BASE_FEE', null, '0.5', '2000.00', '1000.00'],
      ['OVERAGE', 'fonts', '1200', '1.00', '1200.00'],
      ['MINIMUM_COMMIT', null, '1', '1800.00', '1800.00'],
    ];
    const live = await preview(contractId);
    expect(table(live)).toEqual(expected);
    expect(live.lines[3]).toMatchObject({ planKey: null, prorated: true });
    expect(live.total).toBe('4500.00');
    const final = await finalizeInvoiceOk(app, contractId, SEPTEMBER);
    expect(table(final)).toEqual(expected);
    expect([final.total, final.amountDue]).toEqual(['4500.00', '4500.00']);
    // The frozen snapshot reads back the same, line ids included.
    const frozen = await preview(contractId);
    expect(frozen.final).toBe(true);
    expect(frozen.lines.map((line: any) => line.id)).toEqual(live.lines.map((line: any) => line.id));
  });

  it('refuses a minimum commit that is zero or below the cent', async () => {
    for (const minimumCommit of ['0', '10.005']) {
      const response = await app.graphql(PUBLISH, {
        input: { key: `fonts_min_${uniqueSuffix()}`, name: 'Bad', currency: 'USD', minimumCommit, entitlements: [] },
      });
      expect(errorCode(response)).toBe('BAD_USER_INPUT');
      expect(response.errors![0]!.extensions!.field).toBe('minimumCommit');
    }
  });
});
