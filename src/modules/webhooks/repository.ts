import type { Collection, Db } from 'mongodb';
import { insertUnlessPresent, isDuplicateKeyError, type CollectionIndexes } from '../../db/mongo.js';
import type { DeliveryDoc, EndpointDoc, WebhookEventDoc } from './model.js';

/** Marks the dispatcher's claims, so tests counting a request's round trips can leave them out. */
export const DISPATCHER_COMMENT = 'allotment:webhook-dispatcher';

export const ENDPOINTS = 'webhook_endpoints';
export const EVENTS = 'webhook_events';
export const DELIVERIES = 'webhook_deliveries';

export const webhookIndexes: CollectionIndexes[] = [
  { collection: ENDPOINTS, indexes: [{ key: { events: 1, accountId: 1 }, name: 'by_event_account' }] },
  { collection: EVENTS, indexes: [{ key: { createdAt: 1 }, name: 'by_time' }] },
  {
    collection: DELIVERIES,
    indexes: [
      // The claim: due deliveries, oldest due first.
      { key: { status: 1, nextAttemptAt: 1 }, name: 'by_due' },
      { key: { endpointId: 1, createdAt: -1 }, name: 'by_endpoint' },
    ],
  },
];

const UNCLAIMED = new Date(0);

export class WebhookRepository {
  readonly endpoints: Collection<EndpointDoc>;
  readonly events: Collection<WebhookEventDoc>;
  readonly deliveries: Collection<DeliveryDoc>;

  constructor(db: Db) {
    this.endpoints = db.collection<EndpointDoc>(ENDPOINTS);
    this.events = db.collection<WebhookEventDoc>(EVENTS);
    this.deliveries = db.collection<DeliveryDoc>(DELIVERIES);
  }

  /** Inserts the outbox row; false when it already exists (a replay). */
  async insertEvent(event: WebhookEventDoc): Promise<boolean> {
    return insertUnlessPresent(this.events, event);
  }

  /** Live endpoints subscribed to `type` for this account (or for every account). */
  subscribers(type: string, accountId: string | null): Promise<EndpointDoc[]> {
    const accounts = accountId === null ? [null] : [null, accountId];
    return this.endpoints.find({ events: type as never, accountId: { $in: accounts }, deletedAt: null }).toArray();
  }

  /** Inserts deliveries, skipping those a replay already inserted. */
  async insertDeliveries(docs: DeliveryDoc[]): Promise<void> {
    if (docs.length === 0) return;
    try {
      await this.deliveries.insertMany(docs, { ordered: false });
    } catch (error) {
      const writeErrors = (error as { writeErrors?: unknown[] }).writeErrors;
      const allDuplicates =
        isDuplicateKeyError(error) ||
        (Array.isArray(writeErrors) && writeErrors.length > 0 && writeErrors.every((e) => (e as { code?: number }).code === 11000));
      if (!allDuplicates) throw error;
    }
  }

  /**
   * Claims one due delivery atomically: whoever's findOneAndUpdate matches first owns it
   * until `lockedUntil`; every other instance's filter no longer matches it.
   */
  claim(owner: string, now: Date, leaseMs: number, busyEndpoints: string[]): Promise<DeliveryDoc | null> {
    return this.deliveries.findOneAndUpdate(
      {
        status: 'PENDING',
        nextAttemptAt: { $lte: now },
        lockedUntil: { $lte: now },
        ...(busyEndpoints.length > 0 ? { endpointId: { $nin: busyEndpoints } } : {}),
      },
      { $set: { lockedUntil: new Date(now.getTime() + leaseMs), lockedBy: owner } },
      { sort: { nextAttemptAt: 1 }, returnDocument: 'after', comment: DISPATCHER_COMMENT },
    );
  }

  /** Records an attempt's outcome, fenced on the claim: a stale owner changes nothing. */
  async settle(
    id: string,
    owner: string,
    outcome: Pick<DeliveryDoc, 'status' | 'nextAttemptAt' | 'lastAttemptAt' | 'responseStatus' | 'lastError'>,
  ): Promise<void> {
    await this.deliveries.updateOne(
      { _id: id, lockedBy: owner },
      { $set: { ...outcome, lockedUntil: UNCLAIMED, lockedBy: null }, $inc: { attempts: 1 } },
    );
  }

  async redeliver(id: string, now: Date): Promise<DeliveryDoc | null> {
    return this.deliveries.findOneAndUpdate({ _id: id }, { $set: { status: 'PENDING', nextAttemptAt: now } }, { returnDocument: 'after' });
  }

  listDeliveries(endpointId: string, first: number): Promise<DeliveryDoc[]> {
    return this.deliveries.find({ endpointId }).sort({ createdAt: -1, _id: 1 }).limit(first).toArray();
  }
}

export { UNCLAIMED };
