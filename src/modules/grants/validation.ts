import { BadInputError } from '../../shared/errors.js';
import { formatQuantity, MAX_TERM_UNITS, parseQuantity, type Micros } from '../../shared/quantity.js';
import { KEY_PATTERN } from '../catalog/index.js';
import type { GrantKind, GrantRequestFingerprint } from './model.js';

export const MAX_REASON_LENGTH = 1_000;
export const MAX_KEY_LENGTH = 256;
export const MAX_PRIORITY = 1_000_000;
// Control characters make keys and reasons unprintable in audit entries and logs.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL_CHARS = /[\u0000-\u0008\u000b-\u001f\u007f]/;

export interface IssueGrantInputShape {
  accountId: string;
  feature: string;
  amount: string;
  reason: string;
  idempotencyKey: string;
  kind?: GrantKind | null;
  priority?: number | null;
  effectiveAt?: Date | null;
  expiresAt?: Date | null;
  /** R14: what an auto top-up costs (an exact money string), billed as a TOP_UP line; not in GraphQL's input. */
  price?: string | null;
}

export interface IssueGrantCommand {
  accountId: string;
  feature: string;
  amount: Micros;
  reason: string;
  idempotencyKey: string;
  kind: GrantKind;
  priority: number;
  effectiveAt: Date | null;
  expiresAt: Date | null;
  fingerprint: GrantRequestFingerprint;
}

/** Everything that can be checked without the database; `now` stands for an omitted effectiveAt. */
export function validateIssueGrant(input: IssueGrantInputShape, now: Date): IssueGrantCommand {
  if (typeof input.accountId !== 'string' || input.accountId.length === 0 || input.accountId.length > 128) {
    throw new BadInputError('accountId must be a non-empty string of at most 128 characters.', { field: 'accountId' });
  }
  if (!KEY_PATTERN.test(input.feature)) {
    throw new BadInputError(
      `feature "${String(input.feature).slice(0, 70)}" is not a feature key (lowercase letters, digits and "_", starting with a letter).`,
      {
        field: 'feature',
      },
    );
  }
  const amount = parseQuantity(input.amount, { field: 'amount', maxUnits: MAX_TERM_UNITS });
  const reason = parseReason(input.reason, 'reason');
  const idempotencyKey = input.idempotencyKey;
  if (
    typeof idempotencyKey !== 'string' ||
    idempotencyKey.length === 0 ||
    idempotencyKey.length > MAX_KEY_LENGTH ||
    CONTROL_CHARS.test(idempotencyKey)
  ) {
    throw new BadInputError(
      `idempotencyKey must be 1-${MAX_KEY_LENGTH} printable characters; send the same key when retrying the same grant.`,
      {
        field: 'idempotencyKey',
      },
    );
  }
  const kind = input.kind ?? 'PROMOTIONAL';
  const priority = input.priority ?? 10;
  if (!Number.isInteger(priority) || priority < 0 || priority > MAX_PRIORITY) {
    throw new BadInputError(`priority must be an integer from 0 to ${MAX_PRIORITY} (lower burns first); got ${priority}.`, {
      field: 'priority',
    });
  }
  const effectiveAt = input.effectiveAt ?? null;
  const expiresAt = input.expiresAt ?? null;
  if (expiresAt && expiresAt.getTime() <= (effectiveAt ?? now).getTime()) {
    throw new BadInputError(
      `expiresAt ${expiresAt.toISOString()} must be after effectiveAt ${(effectiveAt ?? now).toISOString()}${effectiveAt ? '' : ' (now, since effectiveAt was omitted)'}.`,
      { field: 'expiresAt' },
    );
  }
  return {
    accountId: input.accountId,
    feature: input.feature,
    amount,
    reason,
    idempotencyKey,
    kind,
    priority,
    effectiveAt,
    expiresAt,
    fingerprint: {
      feature: input.feature,
      amount: formatQuantity(amount),
      kind,
      priority,
      effectiveAt: effectiveAt?.toISOString() ?? null,
      expiresAt: expiresAt?.toISOString() ?? null,
      reason,
    },
  };
}

export function parseReason(value: string, field: string): string {
  const reason = typeof value === 'string' ? value.trim() : '';
  if (reason.length === 0) {
    throw new BadInputError(
      `${field} is required: say why, for the audit trail (e.g. "SLA credit for the 2026-03-02 outage, ticket 4411").`,
      { field },
    );
  }
  if (reason.length > MAX_REASON_LENGTH || CONTROL_CHARS.test(reason)) {
    throw new BadInputError(`${field} must be at most ${MAX_REASON_LENGTH} printable characters; got ${reason.length}.`, { field });
  }
  return reason;
}

/** Same key, same request? Compared field by field on what the caller sent. */
export function sameRequest(a: GrantRequestFingerprint, b: GrantRequestFingerprint): boolean {
  return (
    a.feature === b.feature &&
    a.amount === b.amount &&
    a.kind === b.kind &&
    a.priority === b.priority &&
    a.effectiveAt === b.effectiveAt &&
    a.expiresAt === b.expiresAt &&
    a.reason === b.reason
  );
}
