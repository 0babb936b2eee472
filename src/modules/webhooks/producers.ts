/**
 * The domain events webhooks turn into outbox rows, as plain shapes (this module imports
 * no producer; the composition root passes their events in). Each source id is what makes
 * the producer's write unique, so the outbox id is unique exactly when the event is.
 */
import { formatQuantity } from '../../shared/quantity.js';
import type { WebhookEventInput } from './model.js';

export interface ThresholdAlert {
  _id: string;
  accountId: string;
  feature: string;
  threshold: number;
  used: bigint;
  capacity: bigint;
  periodStart: Date;
  periodEnd: Date | null;
  triggeredAt: Date;
}

export const thresholdCrossed = (alert: ThresholdAlert): WebhookEventInput => ({
  type: 'usage.threshold_crossed',
  sourceId: alert._id,
  accountId: alert.accountId,
  at: alert.triggeredAt,
  data: {
    alertId: alert._id,
    accountId: alert.accountId,
    feature: alert.feature,
    threshold: alert.threshold,
    used: formatQuantity(alert.used),
    capacity: formatQuantity(alert.capacity),
    periodStart: alert.periodStart.toISOString(),
    periodEnd: alert.periodEnd?.toISOString() ?? null,
    triggeredAt: alert.triggeredAt.toISOString(),
  },
});

export interface GrantChange {
  accountId: string;
  feature: string;
  grantId: string;
  action?: 'issued' | 'voided';
}

/** grant.issued or grant.voided; null for a change that is neither (no action given). */
export const grantChanged = (change: GrantChange): WebhookEventInput | null =>
  change.action
    ? {
        type: change.action === 'issued' ? 'grant.issued' : 'grant.voided',
        sourceId: change.grantId,
        accountId: change.accountId,
        data: { grantId: change.grantId, accountId: change.accountId, feature: change.feature },
      }
    : null;

export interface IssuedGrant extends GrantChange {
  amount?: bigint;
  price?: string;
}

/**
 * credits.topped_up for a grant an auto top-up issued (R14; the caller knows which). It
 * rides on the grant's own exactly-once announcement, so it is recorded once per grant.
 */
export const creditsToppedUp = (change: IssuedGrant): WebhookEventInput => ({
  type: 'credits.topped_up',
  sourceId: change.grantId,
  accountId: change.accountId,
  data: {
    grantId: change.grantId,
    accountId: change.accountId,
    feature: change.feature,
    amount: change.amount === undefined ? null : formatQuantity(change.amount),
    price: change.price ?? null,
  },
});

/** R18: a trial converted (ACTIVE) or ended the contract (CANCELED); one event per contract and trial end. */
export interface EndedTrial {
  contractId: string;
  accountId: string;
  trialEndsAt: Date;
  status: string;
  endedAt: Date;
}

export const trialEnded = (trial: EndedTrial): WebhookEventInput => ({
  type: 'contract.trial_ended',
  sourceId: `${trial.contractId}@${trial.endedAt.toISOString()}`,
  accountId: trial.accountId,
  at: trial.endedAt,
  data: {
    contractId: trial.contractId,
    accountId: trial.accountId,
    trialEndsAt: trial.trialEndsAt.toISOString(),
    status: trial.status,
    endedAt: trial.endedAt.toISOString(),
  },
});

export interface FinalizedInvoice {
  invoiceId: string;
  contractId: string;
  accountId: string;
  periodStart: Date;
  periodEnd: Date;
  currency: string;
  total: string;
  amountDue: string;
  finalizedAt: Date | null;
}

export const invoiceFinalized = (invoice: FinalizedInvoice): WebhookEventInput => ({
  type: 'invoice.finalized',
  sourceId: invoice.invoiceId,
  accountId: invoice.accountId,
  at: invoice.finalizedAt ?? undefined,
  data: {
    invoiceId: invoice.invoiceId,
    contractId: invoice.contractId,
    accountId: invoice.accountId,
    periodStart: invoice.periodStart.toISOString(),
    periodEnd: invoice.periodEnd.toISOString(),
    currency: invoice.currency,
    total: invoice.total,
    amountDue: invoice.amountDue,
    finalizedAt: invoice.finalizedAt?.toISOString() ?? null,
  },
});
