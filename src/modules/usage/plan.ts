import { randomUUID } from 'node:crypto';
import { BadInputError, IdempotencyKeyReusedError } from '../../shared/errors.js';
import { type EffectiveTerms, termsApply } from '../entitlements/index.js';
import { eventId, samePayload } from './idempotency.js';
import type { DecisionReason, PostingDoc, UsageEventCommand, UsageEventDoc } from './model.js';
import type { TermsResolver } from './terms.js';

/**
 * Planning a request (SPEC §6 step 1, before any write): which commands are duplicates of
 * one another, which are refused outright, and which postings and event documents the
 * rest become. Everything here is pure except the terms lookup.
 */

export interface RequestOrigin {
  actor: string;
  requestId: string | null;
  receivedAt: Date;
}

/** One event of a posting, with the terms it is decided against. */
export interface Member {
  /** Position in the request. */
  index: number;
  command: UsageEventCommand;
  doc: UsageEventDoc;
  terms: EffectiveTerms;
}

/**
 * In-request duplicates (R7 idempotency within one batch): the first occurrence of an
 * event id is the original; a later one with another payload refuses the whole request.
 */
export function inRequestDuplicates(commands: readonly UsageEventCommand[]): {
  originals: number[];
  duplicateOf: Map<number, number>;
} {
  const firstByEventId = new Map<string, number>();
  const duplicateOf = new Map<number, number>();
  commands.forEach((command, index) => {
    const id = eventId(command.accountId, command.idempotencyKey);
    const first = firstByEventId.get(id);
    if (first === undefined) {
      firstByEventId.set(id, index);
      return;
    }
    if (!sameCommandPayload(commands[first]!, command)) {
      throw new IdempotencyKeyReusedError(
        `events[${index}] reuses idempotencyKey "${command.idempotencyKey}" of events[${first}] with a different payload; use a new key for a different event.`,
      );
    }
    duplicateOf.set(index, first);
  });
  return { originals: [...firstByEventId.values()], duplicateOf };
}

/** Terms at each event's own timestamp (R8: an event counts in the period of its timestamp). */
export function resolveTerms(
  resolver: TermsResolver,
  events: ReadonlyArray<{ accountId: string; feature: string; timestamp: Date }>,
): Promise<EffectiveTerms[]> {
  return resolver(events.map(({ accountId, feature, timestamp }) => ({ accountId, feature, at: timestamp })));
}

/** Refusals that are errors for the whole request rather than REJECTED receipts. */
export function assertRecordable(command: UsageEventCommand, terms: EffectiveTerms, position: number | undefined): void {
  const where = position === undefined ? '' : `events[${position}]: `;
  if (terms.access === 'UNKNOWN_FEATURE' || terms.featureType === null) {
    throw new BadInputError(`${where}feature "${command.feature}" is not defined in the catalog; define it with defineFeature first.`, {
      field: 'feature',
    });
  }
  if (terms.featureType === 'BOOLEAN') {
    throw new BadInputError(`${where}feature "${command.feature}" is BOOLEAN: usage can only be recorded for METERED and GAUGE features.`, {
      field: 'feature',
    });
  }
  if (command.set && terms.featureType !== 'GAUGE') {
    throw new BadInputError(
      `${where}feature "${command.feature}" is ${terms.featureType}: setUsage sets a level, so it applies to GAUGE features only; use recordUsage.`,
      {
        field: 'feature',
      },
    );
  }
  if (command.quantity < 0n && !command.set && terms.featureType !== 'GAUGE') {
    throw new BadInputError(
      `${where}quantity must not be negative for METERED feature "${command.feature}"; only GAUGE features take signed deltas.`,
      { field: 'quantity', ...(position === undefined ? {} : { index: position }) },
    );
  }
  if (terms.hasAccess && (terms.counterId === null || terms.period === null)) {
    throw new Error(`terms for ${command.accountId}/${command.feature} grant access without a usage period`);
  }
}

export function accessRefusal(terms: EffectiveTerms): DecisionReason {
  return terms.access === 'ENTITLED' ? 'NOT_ENTITLED' : terms.access;
}

/**
 * One posting per counter the request touches (events refused before counting group by
 * their refusal instead), all RESERVED under `lease`, and one event document per original
 * command, numbered by `seq` within its posting: the order HARD limits are decided in.
 */
export function planPostings(
  commands: readonly UsageEventCommand[],
  originals: number[],
  terms: EffectiveTerms[],
  origin: RequestOrigin,
  lease: PostingDoc['lease'],
  retentionDays: number,
): { postings: PostingDoc[]; members: Member[] } {
  const expiresAt = new Date(origin.receivedAt.getTime() + retentionDays * 86_400_000);
  // The creation time leads the id: a retry that finds events without their posting can
  // tell a writer still at work from one that died (see postingCreatedAt, awaitPosting).
  const prefix = `${origin.receivedAt.getTime().toString(36)}-${randomUUID()}`;
  const byGroup = new Map<string, PostingDoc>();
  const members: Member[] = [];
  const seqs = new Map<string, number>();
  originals.forEach((index, position) => {
    const command = commands[index]!;
    const resolved = terms[position]!;
    // R20: terms whose dimension rules the event's properties fail do not apply: nothing is counted.
    const refusal = !resolved.hasAccess
      ? accessRefusal(resolved)
      : termsApply(resolved, command.properties)
        ? null
        : 'DIMENSION_NOT_ALLOWED';
    // One posting per (counter, account): members drawing on one pool (R13) post apart,
    // each with its own cap, since a posting is one account's unit of work.
    // R14: features burning one credit counter post apart too: a posting burns for one feature.
    const group =
      refusal === null
        ? resolved.pool
          ? `${resolved.counterId!}|${command.accountId}`
          : resolved.burn
            ? `${resolved.counterId!}|burn:${command.feature}`
            : resolved.counterId!
        : `${command.accountId}|${command.feature}|${refusal}`;
    let posting = byGroup.get(group);
    if (!posting) {
      posting = {
        _id: `${prefix}:${byGroup.size}`,
        accountId: command.accountId,
        feature: command.feature,
        counterId: refusal === null ? resolved.counterId : null,
        period: refusal === null ? resolved.period : null,
        refusal,
        state: 'RESERVED',
        attempt: 1,
        lease,
        actor: origin.actor,
        requestId: origin.requestId,
        receivedAt: origin.receivedAt,
        expiresAt,
      };
      byGroup.set(group, posting);
    }
    const seq = seqs.get(posting._id) ?? 0;
    seqs.set(posting._id, seq + 1);
    members.push({
      index,
      command,
      terms: resolved,
      doc: {
        _id: eventId(command.accountId, command.idempotencyKey),
        accountId: command.accountId,
        idempotencyKey: command.idempotencyKey,
        feature: command.feature,
        quantity: command.quantity,
        timestamp: command.timestamp,
        clientTimestamp: command.clientTimestamp,
        properties: command.properties,
        ...(command.set ? { set: true as const } : {}),
        postingId: posting._id,
        seq,
        // Recorded so that reconciliation can recompute the credit counter (R14).
        ...(refusal === null && resolved.burn ? { creditsPerUnit: resolved.burn.perUnit } : {}),
      },
    });
  });
  return { postings: [...byGroup.values()], members };
}

/** When a posting id was minted (its base-36 prefix); 0 for ids without one (old enough). */
export function postingCreatedAt(postingId: string): number {
  const time = Number.parseInt(postingId.slice(0, postingId.indexOf('-')), 36);
  return Number.isFinite(time) ? time : 0;
}

function sameCommandPayload(a: UsageEventCommand, b: UsageEventCommand): boolean {
  return samePayload(a, { ...b, _id: '', postingId: '', seq: 0 });
}
