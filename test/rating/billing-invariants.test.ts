/**
 * Billing invariants (issue 12): the same units are never billed on two invoices, a
 * finalised period never changes, billing stops when a contract is canceled, and terms
 * cannot change inside a finalised period. Hand-computed tables first, then a bounded
 * property over random contracts, ends, status changes and usage on the real wire DB.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { periodContaining } from '../../src/shared/periods.js';
import { DEFINE_FEATURE, errorCode, gql, upsertContract } from '../support/fixtures.js';
import { startTestInstance, type TestInstance } from '../support/harness.js';
import {
  CHANGE_PLAN,
  RATING_ENV,
  ROWS_SCANNED,
  SET_OVERRIDE,
  SET_STATUS,
  dataPlatformContract,
  finalizeInvoice,
  finalizeInvoiceOk,
  invoicePreviewOk,
  sharedRowsPlans,
  table,
  uniqueSuffix,
} from '../support/rating-fixtures.js';
import { key, recordUsageOk } from '../support/usage-fixtures.js';

let app: TestInstance;
let plans: { base: string; addon: string };
beforeAll(async () => {
  app = await startTestInstance({ env: RATING_ENV });
  await gql(app, DEFINE_FEATURE, { input: ROWS_SCANNED });
  plans = await sharedRowsPlans(app);
});
afterAll(() => app.stop());

const MARCH = '2026-03-01T00:00:00.000Z';
const rows = (accountId: string, quantity: string, timestamp: string) =>
  recordUsageOk(app, { accountId, feature: 'rows_scanned', quantity, idempotencyKey: key(), timestamp });

/** A base contract and an add-on for one account, both from March 1; the add-on's id sorts after. */
async function sharedAccount(options: { baseEndsAt?: string; addonEndsAt?: string } = {}) {
  const suffix = uniqueSuffix();
  const accountId = `acct_inv_${suffix}`;
  const base = `ctr_inv_${suffix}_a`;
  const addon = `ctr_inv_${suffix}_b`;
  await upsertContract(app, { id: base, accountId, planKey: plans.base, startsAt: MARCH, endsAt: options.baseEndsAt });
  await upsertContract(app, { id: addon, accountId, planKey: plans.addon, startsAt: MARCH, endsAt: options.addonEndsAt });
  return { accountId, base, addon };
}

describe('a feature several contracts enable is rated once, on one invoice', () => {
  it('an add-on that ends mid-period: 1,300 rows counted INCLUDED against 1,500 are billed nowhere as overage', async () => {
    const { accountId, base, addon } = await sharedAccount({ addonEndsAt: '2026-03-16T00:00:00Z' });
    expect((await rows(accountId, '1300', '2026-03-10T12:00:00Z')).reason).toBe('INCLUDED');

    const owner = await invoicePreviewOk(app, base, MARCH);
    expect(table(owner)).toEqual([
      ['BASE_FEE', null, '1', '100.00', '100.00'],
      ['OVERAGE', 'rows_scanned', '0', '0.10', '0.00'],
    ]);
    expect(owner.usage).toEqual([expect.objectContaining({ included: '1500', used: '1300', coveredByIncluded: '1300', overage: '0' })]);
    expect(owner.lines[1].description).toBe('Rows scanned: 1,300 used, within 1,500 included');

    // The add-on: 15 of 31 days of $20 = 9.677… → 9.68, and no usage (it is on the base's invoice).
    const other = await invoicePreviewOk(app, addon, MARCH);
    expect(table(other)).toEqual([
      ['BASE_FEE', null, '0.483871', '20.00', '9.68'],
      ['OVERAGE', 'rows_scanned', '0', null, '0.00'],
    ]);
    expect(other.lines[1].description).toBe(`Rows scanned: shared with contract ${base}, whose invoice rates this usage`);
    expect(other.usage).toEqual([]);
    expect(other.lines[0].description).toBe(
      `Rows add-on (${plans.addon} v1) base fee, 2026-03-01 to 2026-03-16: prorated 15 of 31 days of 20.00 USD`,
    );
  });

  it('the older contract ends mid-period: usage before and after its end is one balance, rated on its invoice', async () => {
    const { accountId, base, addon } = await sharedAccount({ baseEndsAt: '2026-03-16T00:00:00Z' });
    expect((await rows(accountId, '1300', '2026-03-10T12:00:00Z')).reason).toBe('INCLUDED');
    // After the base ends the add-on alone has 500: 1,300 + 300 is beyond it, accepted as overage (SOFT).
    expect((await rows(accountId, '300', '2026-03-20T12:00:00Z')).reason).toBe('OVERAGE');

    // 1,600 used against 1,500 included: 100 rows × $0.10 = $10.00, once. Base fee 15/31 × 100 = 48.387… → 48.39.
    const owner = await invoicePreviewOk(app, base, MARCH);
    expect(table(owner)).toEqual([
      ['BASE_FEE', null, '0.483871', '100.00', '48.39'],
      ['OVERAGE', 'rows_scanned', '100', '0.10', '10.00'],
    ]);
    expect([owner.total, owner.exactTotal]).toEqual(['58.39', '58.39']);
    const other = await invoicePreviewOk(app, addon, MARCH);
    expect(table(other)).toEqual([
      ['BASE_FEE', null, '1', '20.00', '20.00'],
      ['OVERAGE', 'rows_scanned', '0', null, '0.00'],
    ]);
    expect(other.usage).toEqual([]);
  });

  it('the older contract canceled later: March keeps the statuses it had, and stays on its invoice', async () => {
    const { accountId, base, addon } = await sharedAccount();
    await rows(accountId, '1300', '2026-03-10T12:00:00Z');
    const canceled = (await gql(app, SET_STATUS, { contractId: base, status: 'CANCELED' })).setContractStatus;
    expect(canceled.canceledAt).toEqual(expect.any(String));
    expect(canceled.statusHistory.map((change: any) => change.status)).toEqual(['ACTIVE', 'CANCELED']);

    const owner = await invoicePreviewOk(app, base, MARCH);
    expect(table(owner)).toEqual([
      ['BASE_FEE', null, '1', '100.00', '100.00'],
      ['OVERAGE', 'rows_scanned', '0', '0.10', '0.00'],
    ]);
    expect(owner.usage[0]).toMatchObject({ included: '1500', used: '1300', overage: '0' });
    const other = await invoicePreviewOk(app, addon, MARCH);
    expect(table(other)).toEqual([
      ['BASE_FEE', null, '1', '20.00', '20.00'],
      ['OVERAGE', 'rows_scanned', '0', null, '0.00'],
    ]);
  });

  it('a closed period never changes: the first finalisation records the owner, later contract changes do not move it', async () => {
    const { accountId, base, addon } = await sharedAccount();
    await rows(accountId, '1300', '2026-03-10T12:00:00Z');
    // The add-on (not the owner) is finalised first: that fixes March's owner and terms.
    const frozenAddon = await finalizeInvoiceOk(app, addon, MARCH);
    expect(frozenAddon.usage).toEqual([]);

    // Then the base contract is canceled and ends before March is over; the add-on ends too.
    await gql(app, SET_STATUS, { contractId: base, status: 'CANCELED' });
    await upsertContract(app, {
      id: base,
      accountId,
      planKey: plans.base,
      startsAt: MARCH,
      endsAt: '2026-03-05T00:00:00Z',
      status: 'CANCELED',
    });
    await upsertContract(app, { id: addon, accountId, planKey: plans.addon, startsAt: MARCH, endsAt: '2026-03-20T00:00:00Z' });

    // Today's rule would now bill 1,300 − 500 = 800 rows on the add-on; the record keeps them on the base, within 1,500.
    expect(await invoicePreviewOk(app, addon, MARCH)).toEqual(frozenAddon);
    const owner = await finalizeInvoiceOk(app, base, MARCH);
    expect(owner.usage).toEqual([expect.objectContaining({ included: '1500', used: '1300', overage: '0', amount: '0.00' })]);
    const stored = await app.database.db.collection<any>('usage_owners').find({ accountId }).toArray();
    expect(stored.map((doc) => [doc.ownerId, doc.contributorIds, doc.recordedBy])).toEqual([[base, [base, addon], `${addon}|${MARCH}`]]);
  });
});

describe('a CANCELED contract without endsAt stops billing at canceledAt', () => {
  it('prorates the base fee of the current period up to canceledAt, and invoices no later period', async () => {
    const { contractId } = await dataPlatformContract(app, 'UP');
    const now = new Date();
    const current = periodContaining(new Date(MARCH), 'MONTH', now);
    const canceled = (await gql(app, SET_STATUS, { contractId, status: 'CANCELED' })).setContractStatus;
    const canceledAt = new Date(canceled.canceledAt);
    expect(canceledAt.getTime()).toBeGreaterThanOrEqual(now.getTime());

    const invoice = await invoicePreviewOk(app, contractId);
    expect(invoice.periodStart).toBe(current.start.toISOString());
    const [fee] = invoice.lines;
    expect(fee).toMatchObject({
      kind: 'BASE_FEE',
      prorated: true,
      periodStart: current.start.toISOString(),
      periodEnd: canceledAt.toISOString(),
      unitPrice: '2000.00',
    });
    // The part of $2,000 the period had run when it was canceled, on the cent.
    const periodMs = current.end!.getTime() - current.start.getTime();
    const share = (canceledAt.getTime() - current.start.getTime()) / periodMs;
    expect(Math.abs(Number(fee.amount) - 2000 * share)).toBeLessThanOrEqual(0.005);
    expect(fee.description).toMatch(/prorated [\d.]+ of 3[01] days of 2000\.00 USD$/);

    // The periods after the cancellation have no invoice at all, even once they have started.
    const later = new Date(current.end!.getTime() + 40 * 86_400_000);
    const contract = (await app.services.contracts.findByIds([contractId]))[0]!;
    await expect(app.services.rating.preview(contract, current.end, undefined, later)).rejects.toThrow(/is not in force between/);
    const omitted = await app.services.rating.preview(contract, null, undefined, later);
    expect(omitted.periodStart).toEqual(current.start);
    expect(omitted.lines[0]).toMatchObject({ amount: fee.amount });
  });

  it('leaving CANCELED resumes billing and clears canceledAt', async () => {
    const { contractId } = await dataPlatformContract(app, 'UP');
    await gql(app, SET_STATUS, { contractId, status: 'CANCELED' });
    const revived = (await gql(app, SET_STATUS, { contractId, status: 'ACTIVE' })).setContractStatus;
    expect(revived).toMatchObject({ status: 'ACTIVE', canceledAt: null });
    expect(revived.statusHistory.map((change: any) => change.status)).toEqual(['ACTIVE', 'CANCELED', 'ACTIVE']);
    // March, long before the cancellation, is billed in full.
    expect(table(await invoicePreviewOk(app, contractId, MARCH))[0]).toEqual(['BASE_FEE', null, '1', '2000.00', '2000.00']);
  });
});

describe('terms cannot change inside a finalised period', () => {
  it('refuses a plan change dated inside a finalised period, and accepts one after it', async () => {
    const { accountId, contractId } = await dataPlatformContract(app, 'UP');
    const { base } = plans;
    await rows(accountId, '5000500', '2026-03-10T12:00:00Z');
    const frozen = await finalizeInvoiceOk(app, contractId, MARCH);

    const inside = await app.graphql(CHANGE_PLAN, { contractId, planKey: base, effectiveAt: '2026-03-15T00:00:00Z' });
    expect(errorCode(inside)).toBe('BAD_USER_INPUT');
    expect(inside.errors![0]!.message).toBe(
      'effectiveAt (2026-03-15T00:00:00.000Z) falls in a billing period whose invoice is final (finalised through 2026-04-01T00:00:00.000Z); a final invoice keeps the terms it was rated with. Use an effectiveAt of 2026-04-01T00:00:00.000Z or later.',
    );
    expect(await invoicePreviewOk(app, contractId, MARCH)).toEqual(frozen);

    await gql(app, CHANGE_PLAN, { contractId, planKey: base, effectiveAt: '2026-04-01T00:00:00Z' });
    expect(await invoicePreviewOk(app, contractId, MARCH)).toEqual(frozen);
  });

  it('refuses moving the billing anchor once an invoice is final: new periods would bill the same time twice', async () => {
    const { accountId, contractId, planKey } = await dataPlatformContract(app, 'UP');
    await finalizeInvoiceOk(app, contractId, MARCH);
    const moved = await app.graphql(`mutation ($input: ContractInput!) { upsertContract(input: $input) { id } }`, {
      input: { id: contractId, accountId, planKey, startsAt: MARCH, billingAnchor: '2026-03-15T00:00:00Z' },
    });
    expect(errorCode(moved)).toBe('BAD_USER_INPUT');
    expect(moved.errors![0]!.message).toContain('has final invoices (through 2026-04-01T00:00:00.000Z)');
    // The same anchor (omitted: startsAt) is fine.
    await upsertContract(app, { id: contractId, accountId, planKey, startsAt: MARCH, endsAt: '2026-12-01T00:00:00Z' });
  });

  it('an override applies to periods not yet final; a final invoice and its corrections keep the frozen terms', async () => {
    const { accountId, contractId } = await dataPlatformContract(app, 'UP');
    await rows(accountId, '5000500', '2026-03-10T12:00:00Z');
    const frozen = await finalizeInvoiceOk(app, contractId, MARCH);
    await gql(app, SET_OVERRIDE, { contractId, input: { feature: 'rows_scanned', included: '10000000' } });
    // 1,000 late rows: re-rated against the frozen 5,000,000 included, 5,001,500 → 1,501.5 → 2 blocks, one more.
    await rows(accountId, '1000', '2026-03-20T12:00:00Z');
    const after = await invoicePreviewOk(app, contractId, MARCH);
    expect({ ...after, pendingCorrections: [], correctionTotal: '0.00' }).toEqual(frozen);
    expect(after.pendingCorrections).toEqual([expect.objectContaining({ lateUnits: '1000', overageUnits: '1000', amount: '0.40' })]);
    // April is rated with the override.
    await rows(accountId, '6000000', '2026-04-10T12:00:00Z');
    expect((await invoicePreviewOk(app, contractId, '2026-04-01T00:00:00Z')).usage[0]).toMatchObject({
      included: '10000000',
      overage: '0',
    });
  });
});

describe('property: random contracts, ends, status changes and usage on the wire DB', () => {
  const DAY = 86_400_000;
  const day = (iso: string, days: number) => new Date(new Date(iso).getTime() + days * DAY).toISOString();
  const HORIZON = new Date('2026-07-01T00:00:00Z');

  /** The billing period starts of a contract (monthly plans), from its start to its end or the horizon. */
  function billingPeriods(startsAt: string, anchor: string, endsAt: string | null): string[] {
    const end = Math.min(endsAt ? new Date(endsAt).getTime() : Infinity, HORIZON.getTime());
    const starts: string[] = [];
    for (
      let period = periodContaining(new Date(anchor), 'MONTH', new Date(startsAt));
      period.start.getTime() < end;
      period = periodContaining(new Date(anchor), 'MONTH', period.end!)
    ) {
      starts.push(period.start.toISOString());
    }
    return starts;
  }

  const contractArb = fc.record({
    plan: fc.constantFrom<'base' | 'addon'>('base', 'addon'),
    start: fc.constantFrom('2026-02-01T00:00:00.000Z', MARCH, '2026-03-10T00:00:00.000Z'),
    end: fc.constantFrom(null, '2026-03-16T00:00:00.000Z', '2026-04-05T00:00:00.000Z'),
    anchor: fc.constantFrom<'start' | 'march'>('start', 'march'),
    status: fc.constantFrom('ACTIVE', 'ACTIVE', 'PAST_DUE', 'SUSPENDED'),
  });
  const scenarioArb = fc.record({
    contracts: fc.array(contractArb, { minLength: 2, maxLength: 3 }),
    usage: fc.array(fc.record({ day: fc.integer({ min: 0, max: 55 }), quantity: fc.integer({ min: 1, max: 900 }) }), {
      minLength: 1,
      maxLength: 4,
    }),
    finalizeFirst: fc.array(fc.boolean(), { minLength: 12, maxLength: 12 }),
    changes: fc.array(
      fc.oneof(
        fc.record({
          kind: fc.constant<'status'>('status'),
          target: fc.nat({ max: 2 }),
          status: fc.constantFrom('CANCELED', 'SUSPENDED', 'ACTIVE'),
        }),
        fc.record({
          kind: fc.constant<'end'>('end'),
          target: fc.nat({ max: 2 }),
          end: fc.constantFrom(null, '2026-03-12T00:00:00.000Z', '2026-03-25T00:00:00.000Z'),
        }),
      ),
      { minLength: 1, maxLength: 3 },
    ),
  });

  it('bills no unit twice across an account invoices, and a closed period never changes', async () => {
    await fc.assert(
      fc.asyncProperty(scenarioArb, async ({ contracts, usage, finalizeFirst, changes }) => {
        const suffix = uniqueSuffix();
        const accountId = `acct_prop_${suffix}`;
        const docs = contracts.map((spec, i) => ({
          id: `ctr_prop_${suffix}_${i}`,
          planKey: plans[spec.plan],
          startsAt: spec.start,
          endsAt: spec.end && spec.end > spec.start ? spec.end : null,
          billingAnchor: spec.anchor === 'start' ? spec.start : MARCH,
          status: spec.status,
        }));
        for (const doc of docs) await upsertContract(app, { ...doc, accountId });
        let accepted = 0;
        for (const event of usage) {
          const receipt = await rows(accountId, String(event.quantity), day(MARCH, event.day));
          if (receipt.status === 'ACCEPTED') accepted += event.quantity;
        }

        const invoices = docs.flatMap((doc) =>
          billingPeriods(doc.startsAt, doc.billingAnchor, doc.endsAt).map((start) => ({ contractId: doc.id, start })),
        );
        const billed = (all: any[]) => {
          const seen = new Map<string, number>();
          let units = 0;
          for (const invoice of all) {
            for (const entry of invoice.usage) {
              const counter = `${entry.feature}@${entry.periodStart}`;
              seen.set(counter, (seen.get(counter) ?? 0) + 1);
              units += Number(entry.used);
              expect(Number(entry.overage)).toBeLessThanOrEqual(Number(entry.used));
            }
          }
          for (const [counter, times] of seen) expect(times, `${counter} is on ${times} invoices`).toBe(1);
          return units;
        };
        // Every accepted unit is rated once: on one invoice, not zero, not two.
        expect(billed(await Promise.all(invoices.map((invoice) => invoicePreviewOk(app, invoice.contractId, invoice.start))))).toBe(
          accepted,
        );

        // Some periods are closed, then contracts change.
        const closed = new Map<string, any>();
        for (const [i, invoice] of invoices.entries()) {
          if (finalizeFirst[i % finalizeFirst.length])
            closed.set(`${invoice.contractId}|${invoice.start}`, await finalizeInvoiceOk(app, invoice.contractId, invoice.start));
        }
        for (const change of changes) {
          const doc = docs[change.target % docs.length]!;
          if (change.kind === 'status') {
            await gql(app, SET_STATUS, { contractId: doc.id, status: change.status });
          } else {
            const endsAt = change.end && change.end > doc.startsAt ? change.end : null;
            const status = (await app.services.contracts.findByIds([doc.id]))[0]!.status;
            await upsertContract(app, { ...doc, accountId, endsAt, status });
          }
        }

        // Closed invoices are unchanged, and after finalising everything still invoiceable no unit is billed twice.
        const finals: any[] = [];
        for (const invoice of invoices) {
          const id = `${invoice.contractId}|${invoice.start}`;
          const response = await finalizeInvoice(app, invoice.contractId, invoice.start);
          if (closed.has(id)) {
            expect(response.data?.finalizeInvoice, id).toEqual(closed.get(id));
          }
          if (response.errors) {
            expect(errorCode(response)).toBe('BAD_USER_INPUT'); // the period is outside the contract now
            continue;
          }
          finals.push(response.data!.finalizeInvoice);
        }
        expect(billed(finals)).toBeLessThanOrEqual(accepted);
      }),
      { numRuns: 25 },
    );
  }, 240_000);
});
