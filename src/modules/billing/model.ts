import { createHash } from 'node:crypto';

export type BillingProvider = 'STRIPE';

/** An account's customer in the billing system (setBillingCustomer). */
export interface BillingCustomerDoc {
  _id: string;
  provider: BillingProvider;
  customerId: string;
  updatedAt: Date;
}

/**
 * The progress of one invoice's sync, so a crash or a retry resumes where it stopped:
 * the draft invoice, then each line's invoice item, are recorded as Stripe returns them.
 * A step not recorded yet is sent again with the same Idempotency-Key.
 */
export interface BillingSyncDoc {
  /** The Allotment invoice id (contract, period start). */
  _id: string;
  contractId: string;
  accountId: string;
  periodStart: Date;
  provider: BillingProvider;
  customerId: string;
  status: 'SYNCING' | 'SYNCED';
  externalInvoiceId: string | null;
  /** Line id → Stripe invoice item id. */
  items: Record<string, string>;
  lines: number;
  syncedAt: Date | null;
  /** The claim: one instance syncs an invoice at a time. */
  lockedUntil: Date;
  lockedBy: string | null;
}

export interface BillingSyncView {
  provider: BillingProvider;
  status: string;
  externalInvoiceId: string | null;
  lines: number;
  syncedAt: Date | null;
}

const hash = (parts: string[]) => createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 40);

/** Stable per line and period: the same line of the same period always sends the same key. */
export const itemIdempotencyKey = (lineId: string, periodStart: Date): string =>
  `allotment-ii-${hash([lineId, periodStart.toISOString()])}`;

/** Stable per invoice and period. */
export const invoiceIdempotencyKey = (invoiceId: string, periodStart: Date): string =>
  `allotment-in-${hash([invoiceId, periodStart.toISOString()])}`;
