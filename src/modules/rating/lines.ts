/**
 * Stable line ids and readable descriptions.
 *
 * A line id is a hash of (contractId, periodStart, kind, what the line is about): the
 * feature and usage period for OVERAGE and CREDIT, the plan version and the instant its
 * segment starts for BASE_FEE. Rating the same period again, before or after finalising,
 * gives the same ids, so a billing system can upsert by id (and use it as its idempotency
 * key) without ever creating a line twice.
 */
import { createHash } from 'node:crypto';
import type { InvoiceLineKind } from './model.js';

export function lineId(contractId: string, periodStart: Date, kind: InvoiceLineKind, subject: string): string {
  const digest = createHash('sha256').update([contractId, periodStart.toISOString(), kind, subject].join('\u0000')).digest('hex');
  return `il_${digest.slice(0, 32)}`;
}

export function baseFeeSubject(planKey: string, planVersion: number, segmentStart: Date): string {
  return `${planKey}@${planVersion}@${segmentStart.toISOString()}`;
}

export function usageSubject(feature: string, usagePeriodStart: Date): string {
  return `${feature}@${usagePeriodStart.toISOString()}`;
}

/** "7250500.5" → "7,250,500.5"; the sign and fraction are kept as they are. */
export function groupDigits(decimal: string): string {
  const [whole = '', fraction] = decimal.split('.');
  const sign = whole.startsWith('-') ? '-' : '';
  const digits = sign ? whole.slice(1) : whole;
  const grouped = digits.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return `${sign}${grouped}${fraction !== undefined ? `.${fraction}` : ''}`;
}

export function day(at: Date): string {
  return at.toISOString().slice(0, 10);
}

const DAY_MS = 86_400_000;

/** "15" days, or with up to two decimals ("0.94") when the boundaries are not whole days. */
export function days(ms: number): string {
  if (ms % DAY_MS === 0) return groupDigits(String(ms / DAY_MS));
  return groupDigits((ms / DAY_MS).toFixed(2).replace(/\.?0+$/, ''));
}
