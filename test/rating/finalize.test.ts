/**
 * finalizeInvoice (R8, R10, R12): a closed period's figures are frozen once, usage that
 * lands there afterwards is accepted, flagged late and listed for re-rating, and the
 * billing export carries the lines in minor units under stable ids.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { counterId } from '../../src/modules/usage/counters.js';
import { DEFINE_FEATURE, errorCode, gql } from '../support/fixtures.js';
import { signToken, startTestInstance, type TestInstance } from '../support/harness.js';
import {
  BILLING_EXPORT,
  RATING_ENV,
  ROWS_SCANNED,
  dataPlatformContract,
  finalizeInvoice,
  finalizeInvoiceOk,
  invoicePreviewOk,
  table,
} from '../support/rating-fixtures.js';
import { key, recordUsageOk } from '../support/usage-fixtures.js';

let app: TestInstance;
beforeAll(async () => {
  app = await startTestInstance({ env: RATING_ENV });
  await gql(app, DEFINE_FEATURE, { input: ROWS_SCANNED });
});
afterAll(() => app.stop());

const MARCH = '2026-03-01T00:00:00.000Z';
const rows = (accountId: string, quantity: string, timestamp: string) =>
  recordUsageOk(app, { accountId, feature: 'rows_scanned', quantity, idempotencyKey: key(), timestamp });

describe('finalizeInvoice', () => {
  it('freezes the figures once: finalising again returns the same snapshot, audited', async () => {
    const { accountId, contractId } = await dataPlatformContract(app, 'UP');
    await rows(accountId, '7250500', '2026-03-10T12:00:00Z');
    const preview = await invoicePreviewOk(app, contractId, MARCH);
    const first = await finalizeInvoiceOk(app, contractId, MARCH);
    expect(first).toMatchObject({
      final: true,
      finalizedBy: 'test-operator',
      total: '2900.40',
      amountDue: '2900.40',
      pendingCorrections: [],
    });
    expect(first.lines).toEqual(preview.lines);
    expect(first.usage).toEqual(preview.usage);

    const again = await finalizeInvoiceOk(app, contractId, MARCH);
    expect(again).toEqual(first);
    expect(await invoicePreviewOk(app, contractId, MARCH)).toEqual(first);
    expect(await app.database.db.collection('invoices').countDocuments({ contractId })).toBe(1);

    // The finalisation entry's id is derived from the invoice (replay-safe), so order by time.
    const audit = await app.database.db.collection<any>('audit_log').find({ targetType: 'Invoice', accountId }).sort({ at: 1 }).toArray();
    expect(audit.map((entry) => entry.action)).toEqual(['invoice.finalized', 'invoice.finalize_repeated']);
    expect(audit[0]).toMatchObject({
      actor: 'test-operator',
      targetId: `${contractId}|${MARCH}`,
      before: null,
      after: {
        contractId,
        total: '2900.40',
        amountDue: '2900.40',
        usage: [{ feature: 'rows_scanned', used: '7250500', overage: '2250500' }],
      },
    });
    expect(audit[0].after.lines.map((line: any) => [line.kind, line.amount])).toEqual([
      ['BASE_FEE', '2000.00'],
      ['OVERAGE', '900.40'],
    ]);
  });

  it('is one snapshot when several finalise at once', async () => {
    const { accountId, contractId } = await dataPlatformContract(app, 'EXACT');
    await rows(accountId, '5000001', '2026-03-10T12:00:00Z');
    const results = await Promise.all(Array.from({ length: 5 }, () => finalizeInvoiceOk(app, contractId, MARCH)));
    expect(new Set(results.map((result) => result.finalizedAt)).size).toBe(1);
    expect(results[0]).toMatchObject({ total: '2000.00', exactTotal: '2000.0004', amountDue: '2000.00' });
    const actions = (await app.database.db.collection<any>('audit_log').find({ targetType: 'Invoice', accountId }).toArray()).map(
      (entry) => entry.action,
    );
    expect(actions.filter((action) => action === 'invoice.finalized')).toHaveLength(1);
    expect(actions.filter((action) => action === 'invoice.finalize_repeated')).toHaveLength(4);
  });

  it('accepts a late event, flags it, keeps the frozen figures, and lists what re-rating would add', async () => {
    const { accountId, contractId } = await dataPlatformContract(app, 'UP');
    await rows(accountId, '7250500', '2026-03-10T12:00:00Z');
    const frozen = await finalizeInvoiceOk(app, contractId, MARCH);

    // 1,000 more rows in March: 2,251,500 beyond → 2,252 blocks, one more than billed.
    const late = await rows(accountId, '1000', '2026-03-20T08:00:00Z');
    expect(late).toMatchObject({ status: 'ACCEPTED', late: true });
    const onTime = await rows(accountId, '1000', '2026-04-02T08:00:00Z');
    expect(onTime.late).toBe(false);

    const invoice = await invoicePreviewOk(app, contractId, MARCH);
    expect(table(invoice)).toEqual(table(frozen));
    expect([invoice.total, invoice.final, invoice.finalizedAt]).toEqual(['2900.40', true, frozen.finalizedAt]);
    expect(invoice.pendingCorrections).toEqual([
      {
        feature: 'rows_scanned',
        periodStart: MARCH,
        periodEnd: '2026-04-01T00:00:00.000Z',
        usedAtFinalization: '7250500',
        usedNow: '7251500',
        lateUnits: '1000',
        lateEvents: 1,
        overageUnits: '1000',
        amount: '0.40',
      },
    ]);
    expect(invoice.correctionTotal).toBe('0.40');

    // Two more late events within the block already counted: 1,500 late rows, still +1 block.
    await rows(accountId, '200', '2026-03-21T08:00:00Z');
    await rows(accountId, '300', '2026-03-22T08:00:00Z');
    const later = await invoicePreviewOk(app, contractId, MARCH);
    expect(later.pendingCorrections[0]).toMatchObject({ lateUnits: '1500', lateEvents: 3, amount: '0.40' });
    expect(later.total).toBe('2900.40');
    // April is not final: its usage is rated live, nothing late.
    expect((await invoicePreviewOk(app, contractId, '2026-04-01T00:00:00Z')).pendingCorrections).toEqual([]);
  });

  it('lists late usage that stays within the included amount with nothing to add', async () => {
    const { accountId, contractId } = await dataPlatformContract(app, 'EXACT');
    await rows(accountId, '1000000', '2026-03-10T12:00:00Z');
    await finalizeInvoiceOk(app, contractId, MARCH);
    await rows(accountId, '0.000001', '2026-03-31T23:59:59Z');
    const invoice = await invoicePreviewOk(app, contractId, MARCH);
    expect(invoice.pendingCorrections).toEqual([
      expect.objectContaining({ lateUnits: '0.000001', lateEvents: 1, overageUnits: '0', amount: '0.00' }),
    ]);
    expect(invoice.correctionTotal).toBe('0.00');
  });

  it('after a finalisation that stopped once the counters were stamped, freezes only the usage that was not late', async () => {
    const { accountId, contractId } = await dataPlatformContract(app, 'UP');
    await rows(accountId, '7250500', '2026-03-10T12:00:00Z');
    // Step 1 of finalizeInvoice, then the process died: the period is final, no snapshot yet.
    const periodStart = new Date(MARCH);
    await app.services.usage.markPeriodFinal({
      counterId: counterId(accountId, 'rows_scanned', periodStart),
      accountId,
      feature: 'rows_scanned',
      periodStart,
      periodEnd: new Date('2026-04-01T00:00:00Z'),
    });
    expect((await rows(accountId, '1000', '2026-03-20T08:00:00Z')).late).toBe(true);

    const invoice = await finalizeInvoiceOk(app, contractId, MARCH);
    expect([invoice.total, invoice.usage[0].used]).toEqual(['2900.40', '7250500']);
    expect(invoice.pendingCorrections).toEqual([
      expect.objectContaining({ usedAtFinalization: '7250500', usedNow: '7251500', lateEvents: 1, amount: '0.40' }),
    ]);
  });

  it('restores the finalisation audit entry when the finalizer died before writing it', async () => {
    const { accountId, contractId } = await dataPlatformContract(app, 'UP');
    await finalizeInvoiceOk(app, contractId, MARCH);
    const audit = app.database.db.collection<any>('audit_log');
    await audit.deleteOne({ accountId, action: 'invoice.finalized' });
    await finalizeInvoiceOk(app, contractId, MARCH);
    await finalizeInvoiceOk(app, contractId, MARCH);
    const actions = (await audit.find({ accountId, targetType: 'Invoice' }).toArray()).map((entry) => entry.action).sort();
    expect(actions).toEqual(['invoice.finalize_repeated', 'invoice.finalize_repeated', 'invoice.finalized']);
  });

  it('refuses a period that has not ended, a periodStart off the boundaries, an unknown contract and customer tokens', async () => {
    const { contractId, accountId } = await dataPlatformContract(app, 'UP', {
      startsAt: `${new Date(Date.now() - 3 * 86_400_000).toISOString().slice(0, 13)}:00:00Z`,
    });
    const current = (await invoicePreviewOk(app, contractId)).periodStart;
    const open = await finalizeInvoice(app, contractId, current);
    expect(errorCode(open)).toBe('BAD_USER_INPUT');
    expect(open.errors![0]!.message).toContain('has not ended yet');
    expect(errorCode(await finalizeInvoice(app, contractId, new Date(Date.parse(current) + 3_600_000).toISOString()))).toBe(
      'BAD_USER_INPUT',
    );
    expect(errorCode(await finalizeInvoice(app, 'ctr_nobody', MARCH))).toBe('NOT_FOUND');
    const customer = await signToken({ sub: 'user_1', scope: 'contracts:write entitlements:read', account_id: accountId });
    expect(errorCode(await finalizeInvoice(app, contractId, MARCH, { token: customer }))).toBe('FORBIDDEN');
    const reader = await signToken({ sub: 'reader', scope: 'entitlements:read audit:read' });
    expect(errorCode(await finalizeInvoice(app, contractId, MARCH, { token: reader }))).toBe('FORBIDDEN');
  });
});

describe('billingExport', () => {
  it('gives the lines in minor units that add up to the amount due, under the invoice line ids', async () => {
    const { accountId, contractId } = await dataPlatformContract(app, 'EXACT');
    await rows(accountId, '7250500', '2026-03-10T12:00:00Z');
    const invoice = await finalizeInvoiceOk(app, contractId, MARCH);
    const exported = (await gql(app, BILLING_EXPORT, { contractId, periodStart: MARCH })).billingExport;
    expect(exported).toMatchObject({
      contractId,
      accountId,
      periodStart: MARCH,
      currency: 'USD',
      final: true,
      finalizedAt: invoice.finalizedAt,
      amountDue: '2900.20',
      amountDueMinor: '290020',
    });
    expect(
      exported.lines.map((line: any) => [line.kind, line.quantity, line.unitAmountDecimal, line.amountMinor, line.unitPricingExact]),
    ).toEqual([
      ['BASE_FEE', '1', '200000', '200000', true],
      // 2,250.5 blocks at 40 cents: 90,020 cents, but not a whole quantity to send as such.
      ['OVERAGE', '2250.5', '40', '90020', false],
    ]);
    expect(exported.lines.map((line: any) => line.id)).toEqual(invoice.lines.map((line: any) => line.id));
    for (const line of exported.lines) {
      expect(line).toMatchObject({ idempotencyKey: line.id, accountId, contractId, currency: 'USD' });
      expect(line.metadata).toMatchObject({
        allotment_line_id: line.id,
        allotment_contract_id: contractId,
        allotment_period_start: MARCH,
        allotment_kind: line.kind,
      });
    }
  });

  it('allocates sub-cent amounts so the lines add up to the rounded total', async () => {
    const { accountId, contractId } = await dataPlatformContract(app, 'EXACT');
    await rows(accountId, '5000001', '2026-03-10T12:00:00Z');
    const exported = (await gql(app, BILLING_EXPORT, { contractId, periodStart: MARCH })).billingExport;
    expect(exported.final).toBe(false);
    expect(exported.lines.map((line: any) => [line.kind, line.amount, line.amountMinor])).toEqual([
      ['BASE_FEE', '2000.00', '200000'],
      ['OVERAGE', '0.0004', '0'],
    ]);
    expect(exported.amountDueMinor).toBe('200000');
  });

  it('is for billing systems: audit:read, no customer tokens', async () => {
    const { contractId, accountId } = await dataPlatformContract(app, 'UP');
    const customer = await signToken({ sub: 'user_1', scope: 'audit:read entitlements:read', account_id: accountId });
    expect(errorCode(await app.graphql(BILLING_EXPORT, { contractId, periodStart: MARCH }, { token: customer }))).toBe('FORBIDDEN');
    const noScope = await signToken({ sub: 'svc', scope: 'entitlements:read' });
    expect(errorCode(await app.graphql(BILLING_EXPORT, { contractId, periodStart: MARCH }, { token: noScope }))).toBe('FORBIDDEN');
    expect(errorCode(await app.graphql(BILLING_EXPORT, { contractId: 'ctr_nobody' }))).toBe('NOT_FOUND');
  });
});
