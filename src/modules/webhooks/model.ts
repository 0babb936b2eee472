import { createHash } from 'node:crypto';

/** The event types of R21. `credits.topped_up` has no producer in this build. */
export const WEBHOOK_EVENT_TYPES = [
  'usage.threshold_crossed',
  'grant.issued',
  'grant.voided',
  'credits.topped_up',
  'invoice.finalized',
  'contract.trial_ended',
] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/** A receiver. The secret is stored to sign with, and shown once, at creation. */
export interface EndpointDoc {
  _id: string;
  url: string;
  events: WebhookEventType[];
  /** Null: every account's events. */
  accountId: string | null;
  description: string | null;
  secret: string;
  createdAt: Date;
  deletedAt: Date | null;
}

/**
 * The outbox row of one event, written at the event's exactly-once point. Its id is
 * derived from the source (alert id, grant id and action, invoice id), so a replay of
 * that point writes nothing new. It is also the `webhook-id` every delivery carries.
 */
export interface WebhookEventDoc {
  _id: string;
  type: WebhookEventType;
  accountId: string | null;
  data: Record<string, unknown>;
  createdAt: Date;
}

export type DeliveryStatus = 'PENDING' | 'SUCCEEDED' | 'FAILED';

/** One event to one endpoint: the unit of retry, claiming and support (`webhookDeliveries`). */
export interface DeliveryDoc {
  _id: string;
  eventId: string;
  endpointId: string;
  eventType: WebhookEventType;
  accountId: string | null;
  status: DeliveryStatus;
  attempts: number;
  createdAt: Date;
  /** When the next attempt is due (PENDING only). */
  nextAttemptAt: Date;
  /** The claim: an instance owns the delivery until then (epoch 0 when unclaimed). */
  lockedUntil: Date;
  lockedBy: string | null;
  lastAttemptAt: Date | null;
  responseStatus: number | null;
  lastError: string | null;
}

/** What a producer hands over: the source id makes the outbox id. */
export interface WebhookEventInput {
  type: WebhookEventType;
  sourceId: string;
  accountId: string | null;
  data: Record<string, unknown>;
  /** When the event happened (defaults to now). */
  at?: Date;
}

const digest = (text: string) => createHash('sha256').update(text).digest('base64url').slice(0, 27);

export const webhookEventId = (type: string, sourceId: string): string => `msg_${digest(`${type}|${sourceId}`)}`;
export const deliveryId = (eventId: string, endpointId: string): string => `dlv_${digest(`${eventId}|${endpointId}`)}`;
