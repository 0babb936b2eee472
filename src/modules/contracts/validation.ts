/**
 * Contract input from the billing system, checked at the edge: external ids and the
 * shape `upsertContract` takes.
 */
import { BadInputError } from '../../shared/errors.js';
import type { ContractStatus, TrialConversion } from './model.js';

/** Ids come from other systems; they end up in counter ids, so "|" and control characters are out. */
const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:@/-]{0,127}$/;

export function parseExternalId(value: string, field: string): string {
  if (!ID_PATTERN.test(value)) {
    throw new BadInputError(
      `${field} "${value.slice(0, 40)}" is not a valid id: use 1-128 letters, digits or "_ . : @ / -", starting with a letter or digit.`,
      { field },
    );
  }
  return value;
}

export interface ContractInputShape {
  id: string;
  accountId: string;
  planKey: string;
  planVersion?: number | null;
  status?: ContractStatus | null;
  startsAt: Date;
  endsAt?: Date | null;
  billingAnchor?: Date | null;
  trialEndsAt?: Date | null;
  trialConversion?: TrialConversion | null;
}
