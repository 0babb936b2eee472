/**
 * The webhooks module (R21): endpoints, an outbox written at each producer's exactly-once
 * point, and Standard Webhooks delivery from every instance with atomic claims, backoff
 * and a per-endpoint bound. It imports no producer: the composition root subscribes its
 * `record` to their events through the mappers in producers.ts. See docs/webhooks.md.
 */
import type { Db } from 'mongodb';
import type { Logger } from '../../logger.js';
import type { AuditLog } from '../audit/index.js';
import { type DispatcherOptions, WebhookDispatcher } from './dispatcher.js';
import { WebhookRepository } from './repository.js';
import { WebhookService } from './service.js';

export { DISPATCHER_COMMENT, webhookIndexes } from './repository.js';
export type { WebhookService, EndpointView } from './service.js';
export type { WebhookDispatcher } from './dispatcher.js';
export type { DeliveryDoc, WebhookEventType } from './model.js';
export { WEBHOOK_EVENT_TYPES } from './model.js';
export { creditsToppedUp, grantChanged, invoiceFinalized, thresholdCrossed, trialEnded } from './producers.js';

export function createWebhooks(deps: { db: Db; audit: AuditLog; logger: Logger; options: DispatcherOptions }) {
  const repository = new WebhookRepository(deps.db);
  const logger = deps.logger.child({ module: 'webhooks' });
  const dispatcher = new WebhookDispatcher(repository, logger, deps.options);
  const webhooks = new WebhookService(repository, dispatcher, deps.audit, logger, deps.options.allowPrivate);
  return { webhooks, dispatcher };
}
