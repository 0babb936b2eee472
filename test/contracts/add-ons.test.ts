/**
 * Add-ons (R17) through the wire: publishing versions, attaching and detaching with a
 * quantity and a date, the merged capacity a check sees at once, the prorated ADD_ON line
 * and merged included on the invoice, validation, scopes and audit.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signToken, startTestInstance, type TestInstance } from '../support/harness.js';
import { CHECK, DECISION_FIELDS, defineCatalog, errorCode, gql, publishPlan, upsertContract } from '../support/fixtures.js';
import { RATING_ENV, finalizeInvoiceOk, invoicePreviewOk } from '../support/rating-fixtures.js';

let allotment: TestInstance;

const ADD_ON_FIELDS =
  'key version name currency price billingPeriod publishedAt publishedBy entitlements { feature { key } included enforcement }';
const PUBLISH_ADD_ON = `mutation ($input: AddOnInput!) { publishAddOn(input: $input) { ${ADD_ON_FIELDS} } }`;
const CONTRACT_ADD_ONS = `id status addOns { addOn { key version price } quantity effectiveAt endsAt }`;
const ATTACH = `mutation ($contractId: ID!, $addOnKey: ID!, $quantity: Int, $effectiveAt: DateTime) {
  attachAddOn(contractId: $contractId, addOnKey: $addOnKey, quantity: $quantity, effectiveAt: $effectiveAt) { ${CONTRACT_ADD_ONS} } }`;
const DETACH = `mutation ($contractId: ID!, $addOnKey: ID!, $effectiveAt: DateTime) {
  detachAddOn(contractId: $contractId, addOnKey: $addOnKey, effectiveAt: $effectiveAt) { ${CONTRACT_ADD_ONS} } }`;
const RECORD = `mutation ($input: UsageEventInput!) { recordUsage(input: $input) { status reason } }`;

/** 500,000 API calls per unit at $50 a month. */
const API_BOOST = {
  key: 'api_boost',
  name: 'API boost',
  currency: 'USD',
  price: '50',
  entitlements: [{ feature: 'api_calls', included: '500000', enforcement: 'HARD' }],
};

function check(accountId: string, requestedUnits: string) {
  return gql(allotment, CHECK, { accountId, feature: 'api_calls', requestedUnits }).then((data) => data.checkEntitlement);
}

function attach(variables: Record<string, unknown>, token?: string) {
  return allotment.graphql(ATTACH, variables, token ? { token } : undefined);
}

function auditOf(targetId: string, action: string) {
  return allotment.database.db.collection('audit_log').find({ targetId, action }).sort({ _id: 1 }).toArray();
}

beforeAll(async () => {
  allotment = await startTestInstance({ env: RATING_ENV });
  await defineCatalog(allotment);
  await publishPlan(allotment, {
    key: 'starter',
    name: 'Starter',
    currency: 'USD',
    baseFee: '300',
    entitlements: [{ feature: 'api_calls', included: '1000000', enforcement: 'HARD' }],
  });
  await publishPlan(allotment, { key: 'euro', name: 'Euro', currency: 'EUR', entitlements: [{ feature: 'api_calls', included: '10' }] });
  await gql(allotment, PUBLISH_ADD_ON, { input: API_BOOST });
});
afterAll(() => allotment.stop());

describe('attaching an add-on (R17)', () => {
  it('raises capacity at once: 2 × 500,000 API calls attached mid-period', async () => {
    await upsertContract(allotment, { id: 'ctr_boost', accountId: 'acct_boost', planKey: 'starter', startsAt: '2026-01-01T00:00:00Z' });
    const recorded = await gql(allotment, RECORD, {
      input: { accountId: 'acct_boost', feature: 'api_calls', quantity: '900000', idempotencyKey: 'boost-1' },
    });
    expect(recorded.recordUsage.status).toBe('ACCEPTED');

    const before = await check('acct_boost', '600000');
    expect(before).toMatchObject({ allowed: false, reason: 'QUOTA_EXCEEDED', used: '900000', capacity: '1000000' });

    const attached = await gql(allotment, ATTACH, { contractId: 'ctr_boost', addOnKey: 'api_boost', quantity: 2 });
    expect(attached.attachAddOn.addOns).toEqual([
      { addOn: { key: 'api_boost', version: 1, price: '50' }, quantity: 2, effectiveAt: expect.any(String), endsAt: null },
    ]);

    // The very next check: 1,000,000 + 2 × 500,000, no job in between.
    const after = await check('acct_boost', '600000');
    expect(after).toMatchObject({ allowed: true, used: '900000', capacity: '2000000', remaining: '1100000' });
    const denied = await check('acct_boost', '1100001');
    expect(denied).toMatchObject({ allowed: false, reason: 'QUOTA_EXCEEDED' });
    const usage = await gql(allotment, RECORD, {
      input: { accountId: 'acct_boost', feature: 'api_calls', quantity: '600000', idempotencyKey: 'boost-2' },
    });
    expect(usage.recordUsage.status).toBe('ACCEPTED');
  });

  it('bills the add-on prorated as an ADD_ON line, with the merged included on the usage line', async () => {
    await upsertContract(allotment, { id: 'ctr_prorate', accountId: 'acct_prorate', planKey: 'starter', startsAt: '2026-10-01T00:00:00Z' });
    // November has 30 days; attached on the 16th: 15 of 30 days.
    await gql(allotment, ATTACH, { contractId: 'ctr_prorate', addOnKey: 'api_boost', quantity: 2, effectiveAt: '2026-11-16T00:00:00Z' });
    await gql(allotment, RECORD, {
      input: {
        accountId: 'acct_prorate',
        feature: 'api_calls',
        quantity: '1500000',
        idempotencyKey: 'pr-1',
        timestamp: '2026-11-20T00:00:00Z',
      },
    });

    const november = await invoicePreviewOk(allotment, 'ctr_prorate', '2026-11-01T00:00:00Z');
    const addOn = november.lines.find((line: any) => line.kind === 'ADD_ON');
    // 2 units × $50 × 15/30 = $50.00; quantity 2 × 0.5 = 1 unit-period.
    expect(addOn).toMatchObject({ quantity: '1', unitPrice: '50.00', amount: '50.00', prorated: true, feature: null });
    expect(addOn.description).toContain('prorated 15 of 30 days of 50.00 USD each');
    expect(addOn.periodStart).toBe('2026-11-16T00:00:00.000Z');
    const usage = november.usage.find((entry: any) => entry.feature === 'api_calls');
    expect(usage).toMatchObject({ included: '2000000', used: '1500000', overage: '0' });
    // Base fee 300 + add-on 50.
    expect(november.total).toBe('350.00');

    // December (a whole period): 2 × $50 exactly.
    const december = await invoicePreviewOk(allotment, 'ctr_prorate', '2026-12-01T00:00:00Z');
    expect(december.lines.find((line: any) => line.kind === 'ADD_ON')).toMatchObject({ quantity: '2', amount: '100.00', prorated: false });

    // October has no add-on line.
    const october = await invoicePreviewOk(allotment, 'ctr_prorate', '2026-10-01T00:00:00Z');
    expect(october.lines.map((line: any) => line.kind)).not.toContain('ADD_ON');
  });

  it('changes the quantity from its date as a new segment, and detaching ends it', async () => {
    await upsertContract(allotment, { id: 'ctr_qty', accountId: 'acct_qty', planKey: 'starter', startsAt: '2026-09-01T00:00:00Z' });
    await gql(allotment, ATTACH, { contractId: 'ctr_qty', addOnKey: 'api_boost', quantity: 1, effectiveAt: '2026-09-01T00:00:00Z' });
    await gql(allotment, ATTACH, { contractId: 'ctr_qty', addOnKey: 'api_boost', quantity: 3, effectiveAt: '2026-09-11T00:00:00Z' });
    const detached = await gql(allotment, DETACH, { contractId: 'ctr_qty', addOnKey: 'api_boost', effectiveAt: '2026-09-21T00:00:00Z' });
    expect(detached.detachAddOn.addOns.map((s: any) => [s.quantity, s.effectiveAt, s.endsAt])).toEqual([
      [1, '2026-09-01T00:00:00.000Z', '2026-09-11T00:00:00.000Z'],
      [3, '2026-09-11T00:00:00.000Z', '2026-09-21T00:00:00.000Z'],
    ]);
    // September (30 days): 1 × 50 × 10/30 + 3 × 50 × 10/30 = 16.67 + 50.00 (minor units allocated on the sum 66.666…).
    const september = await invoicePreviewOk(allotment, 'ctr_qty', '2026-09-01T00:00:00Z');
    const lines = september.lines.filter((line: any) => line.kind === 'ADD_ON');
    expect(lines.map((line: any) => [line.quantity, line.amount])).toEqual([
      ['0.333333', '16.67'],
      ['1', '50.00'],
    ]);
    // Now (after the detach) only the plan's included amount is left.
    expect((await check('acct_qty', '1')).capacity).toBe('1000000');
  });

  it('pins the version it attached: publishing v2 does not change the contract', async () => {
    await upsertContract(allotment, { id: 'ctr_pin', accountId: 'acct_pin', planKey: 'starter', startsAt: '2026-01-01T00:00:00Z' });
    await gql(allotment, PUBLISH_ADD_ON, {
      input: { ...API_BOOST, key: 'seats_pack', entitlements: [{ feature: 'api_calls', included: '100' }] },
    });
    await gql(allotment, ATTACH, { contractId: 'ctr_pin', addOnKey: 'seats_pack', quantity: 2 });
    const v2 = await gql(allotment, PUBLISH_ADD_ON, {
      input: { ...API_BOOST, key: 'seats_pack', price: '70', entitlements: [{ feature: 'api_calls', included: '900' }] },
    });
    expect(v2.publishAddOn).toMatchObject({ key: 'seats_pack', version: 2, price: '70' });
    expect((await check('acct_pin', '1')).capacity).toBe('1000200');
    // A quantity change keeps the pinned version too.
    const changed = await gql(allotment, ATTACH, { contractId: 'ctr_pin', addOnKey: 'seats_pack', quantity: 3 });
    expect(changed.attachAddOn.addOns.at(-1)).toMatchObject({ addOn: { version: 1, price: '50' }, quantity: 3 });
    expect((await check('acct_pin', '1')).capacity).toBe('1000300');
  });

  it('re-arms threshold alerts like an upgrade: capacity grew, so 80 % fires again when crossed again', async () => {
    await upsertContract(allotment, { id: 'ctr_alerts', accountId: 'acct_alerts', planKey: 'starter', startsAt: '2026-01-01T00:00:00Z' });
    const record = (quantity: string, idempotencyKey: string) =>
      gql(allotment, RECORD, { input: { accountId: 'acct_alerts', feature: 'api_calls', quantity, idempotencyKey } });
    const fired = () => allotment.database.db.collection('usage_alerts').find({ accountId: 'acct_alerts', threshold: 80 }).toArray();
    await record('850000', 'al-1');
    expect(await fired()).toHaveLength(1);
    // 850,000 of 2,000,000 is 42.5 %: below 80 % again, so the threshold re-arms.
    await gql(allotment, ATTACH, { contractId: 'ctr_alerts', addOnKey: 'api_boost', quantity: 2 });
    await record('800000', 'al-2');
    const alerts = await fired();
    expect(alerts).toHaveLength(2);
    expect(alerts.map((alert) => String(alert.capacity))).toContain(String(2_000_000_000_000n));
  });

  it('audits publishing, attaching and detaching with before and after', async () => {
    const published = await auditOf('api_boost@1', 'add_on.published');
    expect(published).toHaveLength(1);
    expect(published[0]!.actor).toBe('test-operator');
    const attached = await auditOf('ctr_qty', 'contract.add_on_attached');
    expect(attached).toHaveLength(2);
    expect(attached[1]!.before).toEqual({ addOns: [expect.objectContaining({ addOn: 'api_boost@1', quantity: 1, endsAt: null })] });
    expect(attached[1]!.after.addOns).toHaveLength(2);
    const detached = await auditOf('ctr_qty', 'contract.add_on_detached');
    expect(detached).toHaveLength(1);
    expect(detached[0]!.after.addOns[1]).toMatchObject({ quantity: 3, endsAt: new Date('2026-09-21T00:00:00Z') });
  });
});

describe('refusals', () => {
  it('validates publishAddOn with the plan rules, naming the field', async () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ ...API_BOOST, key: 'Bad Key' }, 'key'],
      [{ ...API_BOOST, price: '-1' }, 'price'],
      [{ ...API_BOOST, currency: 'usd' }, 'currency'],
      [{ ...API_BOOST, billingPeriod: 'NEVER' }, 'billingPeriod'],
      [{ ...API_BOOST, entitlements: [{ feature: 'nope', included: '1' }] }, 'entitlements[0].feature'],
      [{ ...API_BOOST, entitlements: [{ feature: 'sso', included: '1' }] }, 'entitlements[0].included'],
      [{ ...API_BOOST, entitlements: [{ feature: 'api_calls', pooled: true }] }, 'entitlements[0].pooled'],
      [{ ...API_BOOST, entitlements: [{ feature: 'api_calls' }, { feature: 'api_calls' }] }, 'entitlements[1].feature'],
    ];
    for (const [input, field] of cases) {
      const response = await allotment.graphql(PUBLISH_ADD_ON, { input });
      expect(errorCode(response), field).toBe('BAD_USER_INPUT');
      expect(response.errors![0]!.extensions!.field, JSON.stringify(input)).toBe(field);
    }
  });

  it('refuses bad attaches and detaches with BAD_USER_INPUT and writes nothing', async () => {
    await upsertContract(allotment, {
      id: 'ctr_bad',
      accountId: 'acct_bad',
      planKey: 'starter',
      startsAt: '2026-06-01T00:00:00Z',
      endsAt: '2027-06-01T00:00:00Z',
    });
    await gql(allotment, PUBLISH_ADD_ON, { input: { ...API_BOOST, key: 'euro_boost', currency: 'EUR' } });
    await gql(allotment, PUBLISH_ADD_ON, { input: { ...API_BOOST, key: 'yearly_boost', billingPeriod: 'YEAR' } });
    await gql(allotment, PUBLISH_ADD_ON, {
      input: { ...API_BOOST, key: 'huge_boost', entitlements: [{ feature: 'api_calls', included: '400000000000' }] },
    });
    const cases: Array<[Record<string, unknown>, string, string | RegExp]> = [
      [{ contractId: 'ctr_bad', addOnKey: 'api_boost', quantity: 0 }, 'quantity', /whole number from 1/],
      [{ contractId: 'ctr_bad', addOnKey: 'api_boost', quantity: -2 }, 'quantity', /whole number from 1/],
      [{ contractId: 'ctr_bad', addOnKey: 'huge_boost', quantity: 3 }, 'quantity', /exceeds the maximum of 1000000000000 units/],
      [{ contractId: 'ctr_bad', addOnKey: 'missing' }, 'addOnKey', /Unknown add-on "missing"/],
      [{ contractId: 'ctr_bad', addOnKey: 'euro_boost' }, 'addOnKey', /priced in EUR but contract "ctr_bad" bills in USD/],
      [{ contractId: 'ctr_bad', addOnKey: 'yearly_boost' }, 'addOnKey', /billed per YEAR/],
      [{ contractId: 'ctr_bad', addOnKey: 'api_boost', effectiveAt: '2026-05-01T00:00:00Z' }, 'effectiveAt', /before the contract starts/],
      [
        { contractId: 'ctr_bad', addOnKey: 'api_boost', effectiveAt: '2027-06-01T00:00:00Z' },
        'effectiveAt',
        /not before the contract ends/,
      ],
    ];
    const writes = await allotment.database.db.collection('contracts').findOne({ _id: 'ctr_bad' as never });
    for (const [variables, field, message] of cases) {
      const response = await attach(variables);
      expect(errorCode(response), JSON.stringify(variables)).toBe('BAD_USER_INPUT');
      expect(response.errors![0]!.extensions!.field).toBe(field);
      expect(response.errors![0]!.message).toMatch(message);
    }
    const detach = await allotment.graphql(DETACH, { contractId: 'ctr_bad', addOnKey: 'api_boost' });
    expect(errorCode(detach)).toBe('BAD_USER_INPUT');
    expect(detach.errors![0]!.message).toMatch(/not attached/);
    expect(errorCode(await attach({ contractId: 'ctr_none', addOnKey: 'api_boost' }))).toBe('NOT_FOUND');
    // Nothing was written by any refusal.
    expect(await allotment.database.db.collection('contracts').findOne({ _id: 'ctr_bad' as never })).toEqual(writes);
    expect(await auditOf('ctr_bad', 'contract.add_on_attached')).toHaveLength(0);

    // History only moves forward.
    await gql(allotment, ATTACH, { contractId: 'ctr_bad', addOnKey: 'api_boost', effectiveAt: '2026-08-01T00:00:00Z' });
    const backwards = await attach({ contractId: 'ctr_bad', addOnKey: 'api_boost', quantity: 2, effectiveAt: '2026-07-01T00:00:00Z' });
    expect(backwards.errors![0]!.message).toMatch(/add-on history only moves forward/);
  });

  it('refuses a date inside a finalised billing period, like a plan change', async () => {
    await upsertContract(allotment, { id: 'ctr_final', accountId: 'acct_final', planKey: 'starter', startsAt: '2026-08-01T00:00:00Z' });
    await finalizeInvoiceOk(allotment, 'ctr_final', '2026-08-01T00:00:00Z');
    const refused = await attach({ contractId: 'ctr_final', addOnKey: 'api_boost', effectiveAt: '2026-08-20T00:00:00Z' });
    expect(errorCode(refused)).toBe('BAD_USER_INPUT');
    expect(refused.errors![0]!.message).toMatch(/invoice is final \(finalised through 2026-09-01T00:00:00.000Z\)/);
    expect(
      errorCode(await attach({ contractId: 'ctr_final', addOnKey: 'api_boost', effectiveAt: '2026-09-01T00:00:00Z' })),
    ).toBeUndefined();
  });

  it('needs contracts:write to attach or detach, and catalog:write to publish', async () => {
    const readOnly = await signToken({ scope: 'entitlements:read catalog:write' });
    expect(errorCode(await attach({ contractId: 'ctr_boost', addOnKey: 'api_boost' }, readOnly))).toBe('FORBIDDEN');
    expect(errorCode(await allotment.graphql(DETACH, { contractId: 'ctr_boost', addOnKey: 'api_boost' }, { token: readOnly }))).toBe(
      'FORBIDDEN',
    );
    const contractsOnly = await signToken({ scope: 'contracts:write' });
    expect(errorCode(await allotment.graphql(PUBLISH_ADD_ON, { input: API_BOOST }, { token: contractsOnly }))).toBe('FORBIDDEN');
    expect(errorCode(await allotment.graphql(PUBLISH_ADD_ON, { input: API_BOOST }, { token: null }))).toBe('UNAUTHENTICATED');
  });
});

describe('reading', () => {
  it('resolves Contract.addOns through a representation', async () => {
    const query = `query { _entities(representations: [{ __typename: "Contract", id: "ctr_boost" }]) { ... on Contract { ${CONTRACT_ADD_ONS} trialEndsAt } } }`;
    const [contract] = (await gql(allotment, query))._entities;
    expect(contract.addOns).toHaveLength(1);
    expect(contract.trialEndsAt).toBeNull();
    expect(DECISION_FIELDS).toContain('capacity');
  });
});
