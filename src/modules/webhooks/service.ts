import { randomUUID } from 'node:crypto';
import type { Logger } from '../../logger.js';
import { BadInputError, NotFoundError } from '../../shared/errors.js';
import type { Actor, AuditLog } from '../audit/index.js';
import type { WebhookDispatcher } from './dispatcher.js';
import {
  type DeliveryDoc,
  deliveryId,
  type EndpointDoc,
  WEBHOOK_EVENT_TYPES,
  type WebhookEventDoc,
  type WebhookEventInput,
  type WebhookEventType,
  webhookEventId,
} from './model.js';
import { UNCLAIMED, type WebhookRepository } from './repository.js';
import { newSecret } from './signing.js';
import { refusedTarget } from './targets.js';

export interface EndpointInput {
  url: string;
  events: readonly string[];
  accountId?: string | null;
  description?: string | null;
}

export type EndpointView = Omit<EndpointDoc, '_id' | 'secret' | 'deletedAt'> & { id: string };

/**
 * Crash simulation for the outbox write: an armed fault throws right before the outbox
 * row is written, as if the process died between the producer's write (the alert) and it.
 */
export class OutboxFaults {
  private armed: Array<{ accountId?: string; remaining: number }> = [];
  arm(scope: { accountId?: string; times?: number } = {}): void {
    this.armed.push({ accountId: scope.accountId, remaining: scope.times ?? 1 });
  }
  check(accountId: string | null): void {
    const fault = this.armed.find((f) => f.remaining > 0 && (f.accountId === undefined || f.accountId === accountId));
    if (!fault) return;
    fault.remaining -= 1;
    throw new Error('injected fault before the webhook outbox write');
  }
}

const view = ({ _id, secret: _secret, deletedAt: _deleted, ...rest }: EndpointDoc): EndpointView => ({ id: _id, ...rest });

/**
 * Webhooks (R21): endpoints, the outbox every producer writes at its exactly-once point,
 * and the support operations. Delivery itself is the dispatcher's (dispatcher.ts).
 */
export class WebhookService {
  readonly faults = new OutboxFaults();

  constructor(
    private readonly repository: WebhookRepository,
    private readonly dispatcher: WebhookDispatcher,
    private readonly audit: AuditLog,
    private readonly logger: Logger,
    private readonly allowPrivate: boolean,
  ) {}

  async createEndpoint(input: EndpointInput, by: Actor): Promise<{ endpoint: EndpointView; secret: string }> {
    const refused = await refusedTarget(input.url, this.allowPrivate);
    if (refused) throw new BadInputError(`The endpoint cannot be used: ${refused}.`, { field: 'url' });
    if (input.events.length === 0) throw new BadInputError('events must name at least one event type.', { field: 'events' });
    const unknown = input.events.find((type) => !(WEBHOOK_EVENT_TYPES as readonly string[]).includes(type));
    if (unknown !== undefined) {
      throw new BadInputError(`Unknown event type "${unknown}"; known: ${WEBHOOK_EVENT_TYPES.join(', ')}.`, { field: 'events' });
    }
    const doc: EndpointDoc = {
      _id: `whe_${randomUUID().replaceAll('-', '')}`,
      url: input.url,
      events: [...new Set(input.events)] as WebhookEventType[],
      accountId: input.accountId ?? null,
      description: input.description ?? null,
      secret: newSecret(),
      createdAt: new Date(),
      deletedAt: null,
    };
    await this.repository.endpoints.insertOne(doc);
    const endpoint = view(doc);
    // The secret never reaches the audit trail.
    await this.audit.record({
      ...by,
      action: 'webhook_endpoint.created',
      targetType: 'WebhookEndpoint',
      targetId: doc._id,
      accountId: doc.accountId,
      after: endpoint,
    });
    return { endpoint, secret: doc.secret };
  }

  async deleteEndpoint(id: string, by: Actor): Promise<boolean> {
    const before = await this.repository.endpoints.findOneAndUpdate(
      { _id: id, deletedAt: null },
      { $set: { deletedAt: new Date() } },
      { returnDocument: 'before' },
    );
    if (!before) return false;
    await this.audit.record({
      ...by,
      action: 'webhook_endpoint.deleted',
      targetType: 'WebhookEndpoint',
      targetId: id,
      accountId: before.accountId,
      before: view(before),
    });
    return true;
  }

  async endpoint(id: string): Promise<EndpointDoc | null> {
    return this.repository.endpoints.findOne({ _id: id });
  }

  /**
   * The outbox write, called at a producer's exactly-once point (awaited: a failure fails
   * that point, and its replay calls this again). The event id comes from the source, so
   * a replay inserts nothing new; deliveries to the endpoints subscribed now are inserted
   * with ids from (event, endpoint), so a replay that finds them adds none either.
   */
  async record(input: WebhookEventInput): Promise<void> {
    this.faults.check(input.accountId);
    const event: WebhookEventDoc = {
      _id: webhookEventId(input.type, input.sourceId),
      type: input.type,
      accountId: input.accountId,
      data: input.data,
      createdAt: input.at ?? new Date(),
    };
    await this.repository.insertEvent(event);
    const endpoints = await this.repository.subscribers(input.type, input.accountId);
    const now = new Date();
    await this.repository.insertDeliveries(
      endpoints.map(
        (endpoint): DeliveryDoc => ({
          _id: deliveryId(event._id, endpoint._id),
          eventId: event._id,
          endpointId: endpoint._id,
          eventType: input.type,
          accountId: input.accountId,
          status: 'PENDING',
          attempts: 0,
          createdAt: now,
          nextAttemptAt: now,
          lockedUntil: UNCLAIMED,
          lockedBy: null,
          lastAttemptAt: null,
          responseStatus: null,
          lastError: null,
        }),
      ),
    );
    if (endpoints.length > 0) this.dispatcher.nudge();
  }

  deliveries(endpointId: string, first: number): Promise<DeliveryDoc[]> {
    if (first < 1 || first > 500) throw new BadInputError('first must be between 1 and 500.', { field: 'first' });
    return this.repository.listDeliveries(endpointId, first);
  }

  async delivery(id: string): Promise<DeliveryDoc | null> {
    return this.repository.deliveries.findOne({ _id: id });
  }

  /** Support: sends a delivery again now (same webhook-id), whatever its state. */
  async redeliver(id: string, by: Actor): Promise<DeliveryDoc> {
    const before = await this.repository.deliveries.findOne({ _id: id });
    if (!before) throw new NotFoundError(`Webhook delivery "${id}" does not exist.`);
    const after = (await this.repository.redeliver(id, new Date())) ?? before;
    await this.audit.record({
      ...by,
      action: 'webhook.redelivered',
      targetType: 'WebhookDelivery',
      targetId: id,
      accountId: before.accountId,
      before: { status: before.status, attempts: before.attempts },
      after: { status: after.status, attempts: after.attempts },
    });
    this.logger.info({ deliveryId: id, by: by.actor }, 'webhook redelivery requested');
    this.dispatcher.nudge();
    return after;
  }
}
