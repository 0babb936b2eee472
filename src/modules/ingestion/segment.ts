/**
 * Segment ingestion (R23): the batch and track payloads `@segment/analytics-node` sends,
 * turned into usage events for the usage engine, unchanged in meaning:
 * - `messageId` is the idempotency key, so Segment's retries count once (R7);
 * - the account is `context.groupId`, else `groupId`, else `userId`;
 * - `properties.quantity` is the quantity (default 1); the other properties are kept;
 * - SEGMENT_EVENTS maps event names to features. Unmapped track events, and calls that
 *   are not `track` (identify, page, group…), are acknowledged and counted, not recorded.
 */
import { BadInputError } from '../../shared/errors.js';
import { authorize, type Principal } from '../../shared/scopes.js';
import type { UsageService } from '../usage/index.js';

export interface SegmentOutcome {
  accepted: number;
  duplicates: number;
  rejected: number;
  /** Track events whose name SEGMENT_EVENTS does not map. */
  unmapped: number;
  /** Calls other than track. */
  ignored: number;
}

type UsageEventInput = Parameters<UsageService['recordUsageBatch']>[0][number];

const CHUNK = 1_000;
/** The usage engine's field names, as the Segment call names them. */
const SEGMENT_FIELD: Record<string, string> = { accountId: 'userId', idempotencyKey: 'messageId', quantity: 'properties.quantity' };
const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
function bad(message: string, field: string): never {
  throw new BadInputError(message, { field });
}
const nonEmpty = (value: unknown): value is string => typeof value === 'string' && value.length > 0;

export class SegmentIngestion {
  constructor(
    private readonly usage: Pick<UsageService, 'recordUsageBatch'>,
    private readonly features: Readonly<Record<string, string>>,
  ) {}

  async ingest(body: unknown, principal: Principal): Promise<SegmentOutcome> {
    if (!isObject(body)) bad('The body must be a JSON object: a Segment batch or a single call.', 'body');
    const batched = body.batch !== undefined;
    if (batched && !Array.isArray(body.batch)) bad('batch must be an array of calls.', 'batch');
    const messages: unknown[] = batched ? (body.batch as unknown[]) : [body];
    const outcome: SegmentOutcome = { accepted: 0, duplicates: 0, rejected: 0, unmapped: 0, ignored: 0 };
    const events: UsageEventInput[] = [];
    const positions: number[] = [];
    for (const [index, message] of messages.entries()) {
      const at = batched ? `batch[${index}]` : '';
      const field = (name: string) => (at ? `${at}.${name}` : name);
      if (!isObject(message)) bad(`${at || 'body'} must be an object.`, at || 'body');
      const type = message.type ?? (batched ? undefined : 'track');
      if (!nonEmpty(type)) bad(`${field('type')} must be a string such as "track".`, field('type'));
      if (type !== 'track') {
        outcome.ignored += 1;
        continue;
      }
      if (!nonEmpty(message.event)) bad(`${field('event')} must be the event name.`, field('event'));
      if (!nonEmpty(message.messageId)) bad(`${field('messageId')} is required: it is the idempotency key.`, field('messageId'));
      const context = isObject(message.context) ? message.context : {};
      const accountId = [context.groupId, message.groupId, message.userId].find(nonEmpty);
      if (accountId === undefined) {
        bad(`${at || 'the call'} names no account: set context.groupId, groupId or userId.`, field('userId'));
      }
      if (message.properties !== undefined && !isObject(message.properties)) {
        bad(`${field('properties')} must be an object.`, field('properties'));
      }
      const { quantity = 1, ...properties } = (message.properties ?? {}) as Record<string, unknown>;
      if (!(typeof quantity === 'number' && Number.isFinite(quantity)) && !(typeof quantity === 'string' && quantity.length > 0)) {
        bad(`${field('properties.quantity')} must be a number.`, field('properties.quantity'));
      }
      let timestamp: Date | null = null;
      if (message.timestamp !== undefined && message.timestamp !== null) {
        timestamp = new Date(String(message.timestamp));
        if (Number.isNaN(timestamp.getTime())) bad(`${field('timestamp')} is not an ISO-8601 date.`, field('timestamp'));
      }
      const feature = this.features[message.event];
      if (feature === undefined) {
        outcome.unmapped += 1;
        continue;
      }
      authorize(principal, 'usage:write', accountId);
      events.push({
        accountId,
        feature,
        quantity: typeof quantity === 'number' ? quantity.toString() : quantity,
        idempotencyKey: message.messageId,
        timestamp,
        properties: Object.keys(properties).length > 0 ? properties : undefined,
      });
      positions.push(index);
    }
    for (let start = 0; start < events.length; start += CHUNK) {
      const chunk = events.slice(start, start + CHUNK);
      try {
        const result = await this.usage.recordUsageBatch(chunk, { actor: principal.actor, requestId: null });
        outcome.accepted += result.accepted;
        outcome.duplicates += result.duplicates;
        outcome.rejected += result.rejected;
      } catch (error) {
        // The usage engine names the field by its position in the chunk: name the call instead.
        if (!(error instanceof BadInputError) || typeof error.extensions.index !== 'number') throw error;
        const extensions = error.extensions as { index: number; field?: unknown };
        const index = positions[start + extensions.index]!;
        const where = batched ? `batch[${index}]` : 'the call';
        const message = error.message.replace(/^events\[\d+\]: /, '');
        const field = SEGMENT_FIELD[String(extensions.field)] ?? String(extensions.field);
        throw new BadInputError(`${where}: ${message}`, { field: `${batched ? `${where}.` : ''}${field}` });
      }
    }
    return outcome;
  }
}
