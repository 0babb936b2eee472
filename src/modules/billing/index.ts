/**
 * The billing module (R22): an account's customer in the billing system, and the sync of
 * finalised invoices to Stripe through the official SDK. It reads invoices through the
 * rating module's face (the composition root passes `invoiceOf`). See docs/stripe.md.
 */
import { BillingService, type BillingDeps } from './service.js';
import { createStripeClient } from './stripe.js';

export { billingIndexes } from './service.js';
export type { BillingService } from './service.js';
export type { BillingSyncView } from './model.js';
export { invoiceIdempotencyKey, itemIdempotencyKey } from './model.js';

export function createBilling(deps: Omit<BillingDeps, 'stripe'> & { stripe: { apiKey?: string; apiBase?: string } }): BillingService {
  const stripe = deps.stripe.apiKey ? createStripeClient(deps.stripe.apiKey, deps.stripe.apiBase) : null;
  return new BillingService({ ...deps, stripe });
}
