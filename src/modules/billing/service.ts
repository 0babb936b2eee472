import { randomUUID } from 'node:crypto';
import type { Collection, Db } from 'mongodb';
import { isDuplicateKeyError, type CollectionIndexes } from '../../db/mongo.js';
import type { Logger } from '../../logger.js';
import { BadInputError, NotFoundError } from '../../shared/errors.js';
import type { Actor, AuditLog } from '../audit/index.js';
import { type InvoiceView, toBillingExport } from '../rating/index.js';
import {
  type BillingCustomerDoc,
  type BillingProvider,
  type BillingSyncDoc,
  type BillingSyncView,
  invoiceIdempotencyKey,
  itemIdempotencyKey,
} from './model.js';
import type { StripeClient } from './stripe.js';

export const billingIndexes: CollectionIndexes[] = [
  { collection: 'billing_customers', indexes: [] },
  { collection: 'billing_syncs', indexes: [{ key: { contractId: 1, periodStart: 1 }, name: 'by_contract_period' }] },
];

export interface BillingDeps {
  db: Db;
  audit: AuditLog;
  logger: Logger;
  /** Null when STRIPE_API_KEY is not set: syncInvoice then refuses. */
  stripe: StripeClient | null;
  syncOnFinalize: boolean;
  /** The invoice of (contract, period): the frozen snapshot once final; null when the contract does not exist. */
  invoiceOf: (contractId: string, periodStart: Date) => Promise<InvoiceView | null>;
}

const LEASE_MS = 120_000;
const seconds = (date: Date) => Math.floor(date.getTime() / 1000);
const view = (doc: BillingSyncDoc, status: string = doc.status): BillingSyncView => ({
  provider: doc.provider,
  status,
  externalInvoiceId: doc.externalInvoiceId,
  lines: doc.lines,
  syncedAt: doc.syncedAt,
});

/**
 * Billing sync (R22): a finalised invoice becomes a Stripe draft invoice with one invoice
 * item per non-zero line (docs/stripe.md). Every Stripe call carries an Idempotency-Key
 * derived from the line ids and the period, and every step's result is recorded, so a
 * retry, a crash halfway or a second instance creates nothing twice.
 */
export class BillingService {
  private readonly customers: Collection<BillingCustomerDoc>;
  private readonly syncs: Collection<BillingSyncDoc>;
  private readonly owner = `billing-${randomUUID()}`;

  constructor(private readonly deps: BillingDeps) {
    this.customers = deps.db.collection<BillingCustomerDoc>('billing_customers');
    this.syncs = deps.db.collection<BillingSyncDoc>('billing_syncs');
  }

  async setCustomer(accountId: string, provider: BillingProvider, customerId: string, by: Actor): Promise<void> {
    if (!/^[A-Za-z0-9_]{1,255}$/.test(customerId)) {
      throw new BadInputError('customerId must be a Stripe customer id such as "cus_123".', { field: 'customerId' });
    }
    const before = await this.customers.findOneAndUpdate(
      { _id: accountId },
      { $set: { provider, customerId, updatedAt: new Date() } },
      { upsert: true, returnDocument: 'before' },
    );
    await this.deps.audit.record({
      ...by,
      action: 'billing_customer.set',
      targetType: 'Account',
      targetId: accountId,
      accountId,
      before: before ? { provider: before.provider, customerId: before.customerId } : null,
      after: { provider, customerId },
    });
  }

  /** InvoiceFinalized: syncs in the background when STRIPE_SYNC_ON_FINALIZE is on and the account has a customer. */
  onInvoiceFinalized(invoice: { contractId: string; accountId: string; periodStart: Date }): void {
    if (!this.deps.syncOnFinalize || !this.deps.stripe) return;
    const by = { actor: 'system:billing-sync', requestId: null };
    void this.customers
      .findOne({ _id: invoice.accountId })
      .then((customer) => (customer ? this.sync(invoice.contractId, invoice.periodStart, by) : undefined))
      .catch((error: unknown) =>
        this.deps.logger.warn({ err: error, contractId: invoice.contractId }, 'automatic billing sync failed; syncInvoice retries it'),
      );
  }

  async sync(contractId: string, periodStart: Date, by: Actor): Promise<BillingSyncView> {
    const stripe = this.deps.stripe;
    if (!stripe) throw new BadInputError('Billing sync is not configured: set STRIPE_API_KEY.', { field: 'provider' });
    const invoice = await this.deps.invoiceOf(contractId, periodStart);
    if (!invoice) throw new NotFoundError(`Contract "${contractId}" does not exist.`);
    if (!invoice.final) {
      throw new BadInputError('Only a finalised invoice is synced: call finalizeInvoice for this period first.', { field: 'periodStart' });
    }
    const customer = await this.customers.findOne({ _id: invoice.accountId });
    if (!customer) {
      throw new BadInputError(`Account "${invoice.accountId}" has no billing customer: call setBillingCustomer first.`, {
        field: 'contractId',
      });
    }
    const id = JSON.stringify([invoice.contractId, invoice.periodStart.toISOString()]);
    const claimed = await this.claim(id, invoice, customer);
    if ('settled' in claimed) return claimed.settled;
    let doc = claimed.doc;
    try {
      const exported = toBillingExport(invoice);
      const fenced = { _id: id, lockedBy: this.owner };
      if (!doc.externalInvoiceId) {
        const draft = await stripe.invoices.create(
          {
            customer: doc.customerId,
            currency: invoice.currency.toLowerCase(),
            auto_advance: false,
            collection_method: 'send_invoice',
            days_until_due: 30,
            pending_invoice_items_behavior: 'exclude',
            description: `Allotment invoice ${invoice.periodStart.toISOString().slice(0, 10)} to ${invoice.periodEnd.toISOString().slice(0, 10)}`,
            metadata: { allotment_contract_id: invoice.contractId, allotment_period_start: invoice.periodStart.toISOString() },
          },
          { idempotencyKey: invoiceIdempotencyKey(id, invoice.periodStart) },
        );
        await this.syncs.updateOne(fenced, { $set: { externalInvoiceId: draft.id } });
        doc = { ...doc, externalInvoiceId: draft.id };
      }
      const lines = exported.lines.filter((line) => line.amountMinor !== 0n);
      for (const line of lines) {
        const key = itemIdempotencyKey(line.id, invoice.periodStart);
        if (doc.items[key]) continue;
        const item = await stripe.invoiceItems.create(
          {
            customer: doc.customerId,
            invoice: doc.externalInvoiceId!,
            currency: invoice.currency.toLowerCase(),
            amount: Number(line.amountMinor),
            description: line.description,
            period: { start: seconds(line.periodStart), end: seconds(line.periodEnd ?? invoice.periodEnd) },
            metadata: line.metadata,
          },
          { idempotencyKey: key },
        );
        await this.syncs.updateOne(fenced, { $set: { [`items.${key}`]: item.id } });
        doc.items[key] = item.id;
      }
      const done = { status: 'SYNCED' as const, lines: lines.length, syncedAt: new Date(), lockedUntil: new Date(0), lockedBy: null };
      await this.syncs.updateOne(fenced, { $set: done });
      await this.deps.audit.record({
        ...by,
        action: 'invoice.synced',
        targetType: 'Contract',
        targetId: invoice.contractId,
        accountId: invoice.accountId,
        after: { provider: 'STRIPE', externalInvoiceId: doc.externalInvoiceId, lines: lines.length, periodStart: invoice.periodStart },
      });
      return view({ ...doc, ...done });
    } catch (error) {
      await this.syncs.updateOne({ _id: id, lockedBy: this.owner }, { $set: { lockedUntil: new Date(0), lockedBy: null } });
      throw error;
    }
  }

  /** Creates the sync record once, then claims it for this call; or the settled answer. */
  private async claim(
    id: string,
    invoice: InvoiceView,
    customer: BillingCustomerDoc,
  ): Promise<{ doc: BillingSyncDoc } | { settled: BillingSyncView }> {
    try {
      await this.syncs.insertOne({
        _id: id,
        contractId: invoice.contractId,
        accountId: invoice.accountId,
        periodStart: invoice.periodStart,
        provider: 'STRIPE',
        customerId: customer.customerId,
        status: 'SYNCING',
        externalInvoiceId: null,
        items: {},
        lines: 0,
        syncedAt: null,
        lockedUntil: new Date(0),
        lockedBy: null,
      });
    } catch (error) {
      if (!isDuplicateKeyError(error)) throw error;
    }
    const now = new Date();
    const doc = await this.syncs.findOneAndUpdate(
      { _id: id, status: 'SYNCING', lockedUntil: { $lte: now } },
      { $set: { lockedUntil: new Date(now.getTime() + LEASE_MS), lockedBy: this.owner } },
      { returnDocument: 'after' },
    );
    if (doc) return { doc };
    const current = await this.syncs.findOne({ _id: id });
    if (!current) throw new Error(`billing sync ${id} vanished`);
    // Another instance holds the claim: it will finish; repeat the call to read the result.
    return { settled: view(current, current.status === 'SYNCED' ? 'SYNCED' : 'IN_PROGRESS') };
  }
}
