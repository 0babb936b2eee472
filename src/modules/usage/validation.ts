import { BadInputError } from '../../shared/errors.js';
import { MAX_EVENT_UNITS, type Micros, parseQuantity } from '../../shared/quantity.js';
import type { UsageEventCommand } from './model.js';

/**
 * Validation at the edge: a request is checked whole before anything is written, so a bad
 * event in a batch of 1,000 leaves the database untouched. Messages name the event (by
 * position in a batch) and say how to fix it.
 */
export const MAX_BATCH_EVENTS = 1_000;
export const MAX_KEY_LENGTH = 256;
/** R8: events further ahead than this are a clock problem on the sender's side. */
export const MAX_FUTURE_SKEW_MS = 5 * 60_000;
const MAX_PROPERTIES_BYTES = 8 * 1024;
const MAX_PROPERTIES_DEPTH = 8;
const FEATURE_KEY = /^[a-z][a-z0-9_]{0,63}$/;
// Control characters make keys unprintable in audit entries and logs.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

export interface UsageEventInputShape {
  accountId: string;
  feature: string;
  quantity: string;
  idempotencyKey: string;
  timestamp?: Date | null;
  properties?: unknown;
}

export interface ValidationContext {
  /** The request's receipt time: the timestamp of events sent without one. */
  now: Date;
  retentionDays: number;
}

export function validateBatchSize(count: number): void {
  if (count > MAX_BATCH_EVENTS) {
    throw new BadInputError(
      `recordUsageBatch accepts at most ${MAX_BATCH_EVENTS} events; got ${count}. Split the batch into chunks of ${MAX_BATCH_EVENTS} or fewer.`,
      { field: 'events' },
    );
  }
  if (count === 0) throw new BadInputError('recordUsageBatch needs at least one event.', { field: 'events' });
}

export interface SetUsageInputShape {
  accountId: string;
  feature: string;
  value: string;
  idempotencyKey: string;
  timestamp?: Date | null;
}

/** setUsage (R16): the level to set, zero or more; the feature must turn out to be a GAUGE (plan.ts). */
export function validateSetUsage(input: SetUsageInputShape, context: ValidationContext): UsageEventCommand {
  const { value, ...rest } = input;
  return { ...validateUsageEvent({ ...rest, quantity: value, properties: null }, context, undefined, true), set: true };
}

export function validateUsageEvent(
  input: UsageEventInputShape,
  context: ValidationContext,
  position?: number,
  setLevel = false,
): UsageEventCommand {
  const where = position === undefined ? '' : `events[${position}]: `;
  const fail = (message: string, field: string): never => {
    throw new BadInputError(`${where}${message}`, { field, ...(position === undefined ? {} : { index: position }) });
  };

  if (typeof input.accountId !== 'string' || input.accountId.length === 0 || input.accountId.length > 128) {
    fail('accountId must be a non-empty string of at most 128 characters.', 'accountId');
  }
  if (!FEATURE_KEY.test(input.feature)) {
    fail(
      `feature "${String(input.feature).slice(0, 70)}" is not a feature key (lowercase letters, digits and "_", starting with a letter).`,
      'feature',
    );
  }
  validateIdempotencyKey(input.idempotencyKey, fail);

  let quantity: Micros;
  try {
    quantity = setLevel
      ? parseQuantity(input.quantity, { field: 'value', allowZero: true, maxUnits: MAX_EVENT_UNITS })
      : parseDelta(input.quantity);
  } catch (error) {
    if (error instanceof BadInputError) fail(error.message, setLevel ? 'value' : 'quantity');
    throw error;
  }

  const clientTimestamp = input.timestamp instanceof Date;
  const timestamp = clientTimestamp ? (input.timestamp as Date) : context.now;
  if (timestamp.getTime() > context.now.getTime() + MAX_FUTURE_SKEW_MS) {
    fail(
      `timestamp ${timestamp.toISOString()} is more than 5 minutes in the future (server time ${context.now.toISOString()}); check the sender's clock.`,
      'timestamp',
    );
  }
  const oldest = context.now.getTime() - context.retentionDays * 86_400_000;
  if (timestamp.getTime() < oldest) {
    fail(
      `timestamp ${timestamp.toISOString()} is older than the ${context.retentionDays}-day retention period; such usage can no longer be recorded.`,
      'timestamp',
    );
  }

  const properties = validateProperties(input.properties, fail);
  return {
    accountId: input.accountId,
    feature: input.feature,
    quantity: quantity!,
    idempotencyKey: input.idempotencyKey,
    timestamp,
    clientTimestamp,
    properties,
  };
}

type Fail = (message: string, field: string) => never;

/**
 * A quantity that may be signed: a GAUGE takes negative deltas (R16). Whether the sign is
 * allowed depends on the feature's type, known only once terms are read (plan.ts refuses
 * a negative quantity on a METERED feature before anything is written). Never zero.
 */
function parseDelta(text: string): Micros {
  const trimmed = String(text).trim();
  if (!trimmed.startsWith('-')) return parseQuantity(trimmed, { field: 'quantity', maxUnits: MAX_EVENT_UNITS });
  return -parseQuantity(trimmed.slice(1), { field: 'quantity', maxUnits: MAX_EVENT_UNITS });
}

function validateIdempotencyKey(key: unknown, fail: Fail): void {
  if (typeof key !== 'string' || key.length === 0) fail('idempotencyKey must be a non-empty string.', 'idempotencyKey');
  const text = key as string;
  if (text.length > MAX_KEY_LENGTH) {
    fail(`idempotencyKey is ${text.length} characters long; the maximum is ${MAX_KEY_LENGTH}.`, 'idempotencyKey');
  }
  // "$" and "." are refused so a key can serve safely as a field name or path anywhere
  // downstream (exports, audit snapshots, billing tools); use "-", "_" or ":" instead.
  if (text.includes('$') || text.includes('.')) {
    fail(`idempotencyKey "${text.slice(0, 60)}" contains "$" or "."; use letters, digits, "-", "_" or ":".`, 'idempotencyKey');
  }
  if (CONTROL_CHARS.test(text)) fail('idempotencyKey contains control characters.', 'idempotencyKey');
}

/** Properties are stored as a document, so their keys must be legal MongoDB field names. */
function validateProperties(value: unknown, fail: Fail): Record<string, unknown> | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'object' || Array.isArray(value)) fail('properties must be a JSON object.', 'properties');
  checkJsonValue(value, 'properties', 0, fail);
  const size = Buffer.byteLength(JSON.stringify(value), 'utf8');
  if (size > MAX_PROPERTIES_BYTES) fail(`properties is ${size} bytes of JSON; the maximum is ${MAX_PROPERTIES_BYTES}.`, 'properties');
  return value as Record<string, unknown>;
}

function checkJsonValue(value: unknown, path: string, depth: number, fail: Fail): void {
  if (depth > MAX_PROPERTIES_DEPTH) fail(`${path} nests deeper than ${MAX_PROPERTIES_DEPTH} levels.`, 'properties');
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) fail(`${path} is not a finite number.`, 'properties');
    return;
  }
  if (Array.isArray(value)) {
    for (const [index, item] of value.entries()) checkJsonValue(item, `${path}[${index}]`, depth + 1, fail);
    return;
  }
  if (typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    for (const [key, inner] of Object.entries(value)) {
      if (key.length === 0 || key.startsWith('$') || key.includes('.') || key.includes('\u0000')) {
        fail(`${path} has the key "${key.slice(0, 60)}": property keys must not be empty, start with "$" or contain ".".`, 'properties');
      }
      checkJsonValue(inner, `${path}.${key}`, depth + 1, fail);
    }
    return;
  }
  fail(`${path} holds a value that is not JSON.`, 'properties');
}
