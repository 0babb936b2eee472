/**
 * The typed client product services use to ask Allotment (or the gateway) before doing
 * metered work and to report it afterwards (docs/client.md). It stands alone: it imports
 * neither src/modules nor src/server, only its own generated operation types.
 *
 *   const allotment = createAllotmentClient({ url, token });
 *   const result = await allotment.guard('acct_1001', 'api_calls', '1', () => callTheApi());
 */
import { randomUUID } from 'node:crypto';
import { CHECK_ENTITLEMENT, RECORD_USAGE, RECORD_USAGE_BATCH } from './documents.js';
import type {
  CheckEntitlementQuery,
  RecordUsageBatchMutation,
  RecordUsageMutation,
  ReceiptFragment,
  UsageEventInput,
} from './generated.js';
import { createTransport, type TransportOptions } from './transport.js';

export { AllotmentError, type RetryOptions, type TransportOptions as AllotmentClientOptions } from './transport.js';
export type { DecisionReason, Enforcement, ReceiptFragment as UsageReceipt, UsageStatus } from './generated.js';

export type EntitlementDecision = CheckEntitlementQuery['checkEntitlement'];
export type UsageBatchResult = RecordUsageBatchMutation['recordUsageBatch'];

/** A usage event; `idempotencyKey` is made for you when omitted, and kept across retries. */
export type UsageEvent = Omit<UsageEventInput, 'idempotencyKey' | 'timestamp'> & { idempotencyKey?: string; timestamp?: string | Date };

/** `guard` refused the work: the check said no. Nothing ran and nothing was recorded. */
export class EntitlementDeniedError extends Error {
  readonly code = 'ENTITLEMENT_DENIED';
  constructor(readonly decision: EntitlementDecision) {
    super(`${decision.feature} denied for ${decision.accountId}: ${decision.reason}`);
    this.name = 'EntitlementDeniedError';
  }
}

/**
 * `guard` ran the work but could not record it (its retries ran out, or Allotment refused
 * the event). `event` carries the idempotency key that was used: send it again with
 * `record(event)` later and it still counts once.
 */
export class UsageNotRecordedError<T = unknown> extends Error {
  readonly code = 'USAGE_NOT_RECORDED';
  constructor(
    readonly event: UsageEvent & { idempotencyKey: string },
    readonly result: T,
    override readonly cause: unknown,
  ) {
    super(`the work ran but its usage was not recorded (key ${event.idempotencyKey}): ${(cause as Error)?.message ?? cause}`);
    this.name = 'UsageNotRecordedError';
  }
}

function toInput(event: UsageEvent): UsageEventInput {
  const { timestamp, idempotencyKey, ...rest } = event;
  return {
    ...rest,
    idempotencyKey: idempotencyKey ?? randomUUID(),
    ...(timestamp ? { timestamp: timestamp instanceof Date ? timestamp.toISOString() : timestamp } : {}),
  };
}

export function createAllotmentClient(options: TransportOptions) {
  const request = createTransport(options);

  /** `properties`: the request's dimensions, for dimension rules (R20), e.g. `{ region: 'eu' }`. */
  async function check(
    accountId: string,
    feature: string,
    requestedUnits = '1',
    properties?: Record<string, string>,
  ): Promise<EntitlementDecision> {
    const data = await request<CheckEntitlementQuery>(CHECK_ENTITLEMENT, {
      accountId,
      feature,
      requestedUnits,
      ...(properties ? { properties } : {}),
    });
    return data.checkEntitlement;
  }

  /** Records one event. The key is fixed before the first attempt, so retries count once. */
  async function record(event: UsageEvent): Promise<ReceiptFragment> {
    const data = await request<RecordUsageMutation>(RECORD_USAGE, { input: toInput(event) });
    return data.recordUsage;
  }

  /** Records up to 1,000 events in one request; each gets its own key when it has none. */
  async function recordBatch(events: readonly UsageEvent[]): Promise<UsageBatchResult> {
    const data = await request<RecordUsageBatchMutation>(RECORD_USAGE_BATCH, { events: events.map(toInput) });
    return data.recordUsageBatch;
  }

  /**
   * Checks `units` of `feature`, runs `fn` only when allowed, then records the units exactly
   * once under one idempotency key (retried on transient failures). If `fn` throws, nothing
   * is recorded; if recording fails for good, `UsageNotRecordedError` carries the event to
   * resend. `idempotencyKey` ties the record to your own unit of work, so that a
   * guard repeated for the same work (a redelivered job) still counts once.
   */
  async function guard<T>(
    accountId: string,
    feature: string,
    units: string,
    fn: (decision: EntitlementDecision) => T | Promise<T>,
    guardOptions: { idempotencyKey?: string; properties?: Record<string, string> } = {},
  ): Promise<{ result: T; decision: EntitlementDecision; receipt: ReceiptFragment }> {
    const idempotencyKey = guardOptions.idempotencyKey ?? randomUUID();
    const { properties } = guardOptions;
    const decision = await check(accountId, feature, units, properties);
    if (!decision.allowed) throw new EntitlementDeniedError(decision);
    const result = await fn(decision);
    const event = { accountId, feature, quantity: units, idempotencyKey, ...(properties ? { properties } : {}) };
    try {
      return { result, decision, receipt: await record(event) };
    } catch (error) {
      throw new UsageNotRecordedError(event, result, error);
    }
  }

  return { check, record, recordBatch, guard };
}

export type AllotmentClient = ReturnType<typeof createAllotmentClient>;
