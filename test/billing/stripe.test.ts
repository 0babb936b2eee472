/**
 * R22 against stripe-mock through the official `stripe` SDK: a finalised invoice becomes a
 * draft invoice plus one invoice item per non-zero line, each call with an Idempotency-Key
 * derived from the line id and the period; repeats, lost answers and a second instance
 * send the same keys and create nothing twice.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { invoiceIdempotencyKey, itemIdempotencyKey } from '../../src/modules/billing/index.js';
import { DEFINE_FEATURE, errorCode, gql } from '../support/fixtures.js';
import { signToken, startTestInstance, type TestInstance } from '../support/harness.js';
import { BILLING_EXPORT, RATING_ENV, ROWS_SCANNED, dataPlatformContract, finalizeInvoiceOk } from '../support/rating-fixtures.js';
import { type StripeMock, type StripeRequest, startStripeMock } from '../support/stripe-mock.js';
import { key, recordUsageOk } from '../support/usage-fixtures.js';

const MARCH = '2026-03-01T00:00:00.000Z';
const SET_CUSTOMER = `mutation ($accountId: ID!, $customerId: String!) {
  setBillingCustomer(accountId: $accountId, provider: STRIPE, customerId: $customerId) { id } }`;
const SYNC = `mutation ($contractId: ID!, $periodStart: DateTime!) {
  syncInvoice(contractId: $contractId, periodStart: $periodStart) { provider status externalInvoiceId lines syncedAt } }`;

let stripe: StripeMock;
let app: TestInstance;
let other: TestInstance;
beforeAll(async () => {
  stripe = await startStripeMock();
  const env = { ...RATING_ENV, STRIPE_API_KEY: 'sk_test_allotment', STRIPE_API_BASE: stripe.url };
  app = await startTestInstance({ env });
  other = await startTestInstance({ dbName: app.dbName, env: { ...env, STRIPE_SYNC_ON_FINALIZE: 'true' } });
  await gql(app, DEFINE_FEATURE, { input: ROWS_SCANNED });
});
afterAll(async () => {
  await other.stop();
  await app.stop();
  await stripe.stop();
});

/** A finalised March invoice with a base fee and an overage line, and the account's Stripe customer. */
async function finalisedInvoice(on: TestInstance = app) {
  const { accountId, contractId } = await dataPlatformContract(app, 'UP');
  await recordUsageOk(app, {
    accountId,
    feature: 'rows_scanned',
    quantity: '7250500',
    idempotencyKey: key(),
    timestamp: '2026-03-10T12:00:00Z',
  });
  await gql(app, SET_CUSTOMER, { accountId, customerId: `cus_${accountId.slice(-10)}` });
  await finalizeInvoiceOk(on, contractId, MARCH);
  const exported = (await gql<any>(app, BILLING_EXPORT, { contractId, periodStart: MARCH })).billingExport;
  return { accountId, contractId, lines: exported.lines.filter((line: any) => line.amountMinor !== '0') as any[] };
}

const ofContract = (contractId: string) => (request: StripeRequest) =>
  request.method === 'POST' &&
  (request.form.get('metadata[allotment_contract_id]') === contractId ||
    request.form.get('metadata[allotment_line_id]')?.includes(contractId));

describe('syncInvoice against stripe-mock', () => {
  it('creates a draft invoice and one invoice item per line, with metadata and derived idempotency keys; a repeat creates nothing', async () => {
    const { accountId, contractId, lines } = await finalisedInvoice();
    expect(lines.map((line) => line.kind)).toEqual(['BASE_FEE', 'OVERAGE']);
    const first = (await gql<any>(app, SYNC, { contractId, periodStart: MARCH })).syncInvoice;
    expect(first).toMatchObject({ provider: 'STRIPE', status: 'SYNCED', lines: 2 });
    expect(first.externalInvoiceId).toMatch(/^in_/);

    const sent = stripe.requests.filter(ofContract(contractId));
    const invoices = sent.filter((request) => request.path === '/v1/invoices');
    const items = sent.filter((request) => request.path === '/v1/invoiceitems');
    expect(invoices).toHaveLength(1);
    expect(invoices[0]!.idempotencyKey).toBe(invoiceIdempotencyKey(JSON.stringify([contractId, MARCH]), new Date(MARCH)));
    expect(invoices[0]!.form.get('customer')).toBe(`cus_${accountId.slice(-10)}`);
    expect(invoices[0]!.form.get('auto_advance')).toBe('false');
    expect(
      items.map((request) => ({
        line: request.form.get('metadata[allotment_line_id]'),
        kind: request.form.get('metadata[allotment_kind]'),
        amount: request.form.get('amount'),
        currency: request.form.get('currency'),
        invoice: request.form.get('invoice'),
        key: request.idempotencyKey,
      })),
    ).toEqual(
      lines.map((line) => ({
        line: line.id,
        kind: line.kind,
        amount: line.amountMinor,
        currency: 'usd',
        invoice: expect.stringMatching(/^in_/),
        key: itemIdempotencyKey(line.id, new Date(MARCH)),
      })),
    );

    const before = stripe.requests.length;
    const again = (await gql<any>(app, SYNC, { contractId, periodStart: MARCH })).syncInvoice;
    expect(again).toEqual(first);
    expect(stripe.requests.length).toBe(before);
    const audit = await app.database.db.collection('audit_log').find({ action: 'invoice.synced', targetId: contractId }).toArray();
    expect(audit).toHaveLength(1);
  });

  it('after answers lost on the way back, the retried sync sends the same keys and resumes where it stopped', async () => {
    const { contractId, lines } = await finalisedInvoice();
    const overage = lines.find((line) => line.kind === 'OVERAGE')!;
    // stripe-mock performs the call; the SDK (and its own retries) never see the answer.
    stripe.loseAnswers((path, form) => path === '/v1/invoiceitems' && form.get('metadata[allotment_line_id]') === overage.id, 3);
    const failed = await app.graphql(SYNC, { contractId, periodStart: MARCH });
    expect(errorCode(failed as never)).toBe('INTERNAL_SERVER_ERROR');
    let result: any;
    for (let attempt = 0; attempt < 3 && result?.status !== 'SYNCED'; attempt++) {
      const answer = await app.graphql(SYNC, { contractId, periodStart: MARCH });
      result = answer.data?.syncInvoice;
    }
    expect(result).toMatchObject({ status: 'SYNCED', lines: 2 });

    const sent = stripe.requests.filter(ofContract(contractId));
    const byLine = new Map<string, Set<string | undefined>>();
    for (const request of sent.filter((r) => r.path === '/v1/invoiceitems')) {
      const line = request.form.get('metadata[allotment_line_id]')!;
      byLine.set(line, (byLine.get(line) ?? new Set()).add(request.idempotencyKey));
    }
    // The overage item was sent several times, always under one key; the base fee once.
    expect(sent.filter((r) => r.form.get('metadata[allotment_line_id]') === overage.id).length).toBeGreaterThan(1);
    expect(Object.fromEntries([...byLine].map(([line, keys]) => [line, [...keys]]))).toEqual(
      Object.fromEntries(lines.map((line) => [line.id, [itemIdempotencyKey(line.id, new Date(MARCH))]])),
    );
    expect(sent.filter((r) => r.path === '/v1/invoices')).toHaveLength(1);
    expect(sent.filter((r) => r.path === '/v1/invoiceitems' && r.form.get('metadata[allotment_kind]') === 'BASE_FEE')).toHaveLength(1);
  });

  it('two instances syncing at once create each object once', async () => {
    const { contractId } = await finalisedInvoice();
    const answers = await Promise.all([app, other, app, other].map((on) => gql<any>(on, SYNC, { contractId, periodStart: MARCH })));
    expect(answers.map((answer) => answer.syncInvoice.status).filter((status) => status === 'SYNCED').length).toBeGreaterThanOrEqual(1);
    const sent = stripe.requests.filter(ofContract(contractId));
    expect(sent.filter((r) => r.path === '/v1/invoices')).toHaveLength(1);
    expect(sent.filter((r) => r.path === '/v1/invoiceitems')).toHaveLength(2);
  });

  it('syncs on finalisation when STRIPE_SYNC_ON_FINALIZE=true', async () => {
    const { contractId } = await finalisedInvoice(other);
    const deadline = Date.now() + 10_000;
    let sync: any = null;
    while (Date.now() < deadline && sync?.status !== 'SYNCED') {
      sync = await app.database.db.collection('billing_syncs').findOne({ contractId });
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(sync).toMatchObject({ status: 'SYNCED', lines: 2 });
  });

  it('needs billing:write (internal tokens only), a customer and a final invoice', async () => {
    const { accountId, contractId } = await dataPlatformContract(app, 'UP');
    const customer = await signToken({ scope: 'billing:write', account_id: accountId });
    expect(errorCode((await app.graphql(SET_CUSTOMER, { accountId, customerId: 'cus_1' }, { token: customer })) as never)).toBe(
      'FORBIDDEN',
    );
    const noScope = await signToken({ scope: 'contracts:write' });
    expect(errorCode((await app.graphql(SYNC, { contractId, periodStart: MARCH }, { token: noScope })) as never)).toBe('FORBIDDEN');
    const notFinal = await app.graphql(SYNC, { contractId, periodStart: MARCH });
    expect(errorCode(notFinal as never)).toBe('BAD_USER_INPUT');
  });
});
