import type { Micros } from '../../shared/quantity.js';
import type { GrantBurn, OveragePrice } from './overage.js';

export type InvoiceLineKind = 'BASE_FEE' | 'OVERAGE' | 'CREDIT' | 'MINIMUM_COMMIT' | 'ADD_ON' | 'TOP_UP';

/** One invoice line as GraphQL and the billing export see it: every amount an exact string. */
export interface InvoiceLineView {
  /** Stable: lineId(contractId, periodStart, kind, discriminator). */
  id: string;
  kind: InvoiceLineKind;
  feature: string | null;
  description: string;
  /** BASE_FEE: share of the period; OVERAGE and CREDIT: blocks of `per`. */
  quantity: string;
  /** The fee or the price of one block; negative on CREDIT lines. */
  unitPrice: string | null;
  /** quantity × unitPrice, except a prorated base fee (rounded to the minor unit). */
  amount: string;
  /** The service period: the pin's interval for BASE_FEE, the usage period otherwise. */
  periodStart: Date;
  periodEnd: Date | null;
  planKey: string | null;
  planVersion: number | null;
  prorated: boolean;
  /** R13: a pool's units per account on its OVERAGE line; absent otherwise. */
  members?: PoolMemberUsage[];
  /** R15: a tiered OVERAGE line's charge per tier reached; absent otherwise. */
  tiers?: InvoiceLineTier[];
}

/** One tier's part of a tiered OVERAGE line (R15), every figure an exact string. */
export interface InvoiceLineTier {
  tier: number;
  /** The previous tier's upTo ("0" for the first): the tier holds units above it. */
  from: string;
  upTo: string | null;
  units: string;
  unitPrice: string;
  flatFee: string;
  amount: string;
}

/** One account's units in a pooled usage period (R13). */
export interface PoolMemberUsage {
  accountId: string;
  quantity: Micros;
}

/** How one usage period of one metered feature was rated. Stored as is in a snapshot. */
export interface RatedUsage {
  feature: string;
  featureName: string;
  unit: string | null;
  counterId: string;
  periodStart: Date;
  periodEnd: Date | null;
  /** Null: unlimited. */
  included: Micros | null;
  /** Units the grants made available in the period (R5). */
  granted: Micros;
  used: Micros;
  coveredByIncluded: Micros;
  coveredByGrants: Micros;
  overage: Micros;
  grantBurn: GrantBurn[];
  price: OveragePrice | null;
  grossBlocks: string;
  netBlocks: string;
  /** The period's overage charge after credits: netBlocks × unitPrice. */
  amount: string;
  /** R13: a pool's units per account, the owner first; absent when not pooled. */
  members?: PoolMemberUsage[];
}

/** A rated invoice, live (a preview) or frozen (a finalised snapshot). */
export interface InvoiceView {
  contractId: string;
  accountId: string;
  periodStart: Date;
  periodEnd: Date;
  currency: string;
  lines: InvoiceLineView[];
  usage: RatedUsage[];
  /** The lines' exact sum rounded half-even to the minor unit, like amountDue. */
  total: string;
  /** The lines' exact sum. */
  exactTotal: string;
  /** `total` rounded half-even to the currency's minor unit: what the customer pays. */
  amountDue: string;
  final: boolean;
  finalizedAt: Date | null;
  finalizedBy: string | null;
}

/** What rating publishes: a period was finalised (and on every repeat of it, for recovery). */
export interface RatingEvents {
  InvoiceFinalized: InvoiceView & { invoiceId: string };
}

/** A finalised invoice: the frozen figures of (contract, billing period), written once. */
export interface InvoiceDoc extends InvoiceView {
  /** invoiceId(contractId, periodStart): its uniqueness makes finalising idempotent. */
  _id: string;
  final: true;
  finalizedAt: Date;
  finalizedBy: string;
  requestId: string | null;
}

/** Late usage (R8) in a frozen usage period, and what re-rating it would add. */
export interface PendingCorrection {
  feature: string;
  counterId: string;
  periodStart: Date;
  periodEnd: Date | null;
  usedAtFinalization: Micros;
  usedNow: Micros;
  lateUnits: Micros;
  /** Accepted late events (posted so far). */
  lateEvents: number;
  /** Billable overage units re-rating adds (may be negative if grants grew since). */
  overageUnits: Micros;
  /** What re-rating with the frozen terms would add to the total (exact). */
  amount: string;
}

export function invoiceId(contractId: string, periodStart: Date): string {
  return `${contractId}|${periodStart.toISOString()}`;
}
