import type { AddOnVersionDoc, EntitlementTerms } from '../catalog/index.js';

export type ContractStatus = 'TRIALING' | 'ACTIVE' | 'PAST_DUE' | 'SUSPENDED' | 'CANCELED';

/** Any entitlement field may be replaced for one contract (R3); absent fields inherit the plan's. */
export type EntitlementOverride = Partial<Omit<EntitlementTerms, 'feature'>>;

/** A plan pin that took effect at `effectiveAt` (R3: mid-cycle changes keep a history). */
export interface PlanPin {
  planKey: string;
  planVersion: number;
  effectiveAt: Date;
}

/**
 * A status the contract took at `at` (R4 access, and billing: CANCELED stops it). The
 * first entry is the status the contract was created with and applies from `startsAt`;
 * later entries are written at the instant of the change (setContractStatus, or an
 * upsertContract that changes the status), so a past instant's status never changes.
 */
export interface StatusChange {
  status: ContractStatus;
  at: Date;
}

/** Stored shape of a contract. Dates are BSON dates; ids are the billing system's ids. */
export interface ContractDoc {
  _id: string;
  accountId: string;
  /** The plan in force now (the last entry of `planHistory`). */
  planKey: string;
  planVersion: number;
  /** Every pin in effect order; the first starts at `startsAt`. */
  planHistory?: PlanPin[];
  status: ContractStatus;
  /** Every status in time order (absent on documents written before it existed). */
  statusHistory?: StatusChange[];
  /**
   * When the current cancellation took effect (status CANCELED); null otherwise. Billing
   * stops here (docs/rating.md): the base fee is prorated up to it and no later period is
   * invoiced.
   */
  canceledAt?: Date | null;
  startsAt: Date;
  endsAt: Date | null;
  billingAnchor: Date;
  /**
   * End of the last billing period whose invoice is final (set by rating as it finalises):
   * plan history and the anchor cannot change before it (R3, R12).
   */
  finalizedThrough?: Date | null;
  /** Per-feature overrides, keyed by feature key. */
  overrides?: Record<string, EntitlementOverride>;
  /** R18: TRIALING until this instant, then ACTIVE, or CANCELED when `trialConversion` is CANCEL (trials.ts). */
  trialEndsAt?: Date | null;
  trialConversion?: TrialConversion;
  /** The trial's end once a write stored it; `announced` false while its audit entry and event are owed. */
  trialEnd?: TrialEnd | null;
  /** R17: every add-on segment, in attach order (add-ons.ts). */
  addOns?: AddOnSegment[];
  /** Bumped by every write; writes are compare-and-set on it (no transactions, SPEC §5). */
  revision?: number;
  createdAt: Date;
  updatedAt: Date;
}

/**
 * What an `Account` representation resolves to. Accounts are owned by another subgraph,
 * so any id resolves; `contracts` is preloaded in one batched query for the whole request.
 */
export interface AccountRef {
  id: string;
  contracts: ContractDoc[];
}

/** One feature's overrides on a contract, as read through GraphQL (`ContractOverride`). */
export interface OverrideEntry {
  feature: string;
  override: EntitlementOverride;
}

/** Oldest first: by `startsAt`, then id. The order R4's merge breaks ties in, and listings use. */
export function compareOldestFirst(a: ContractDoc, b: ContractDoc): number {
  return a.startsAt.getTime() - b.startsAt.getTime() || (a._id < b._id ? -1 : a._id > b._id ? 1 : 0);
}

export type TrialConversion = 'ACTIVATE' | 'CANCEL';

export interface TrialEnd {
  at: Date;
  status: ContractStatus;
  announced: boolean;
}

/**
 * An add-on version attached to a contract with a quantity over [effectiveAt, endsAt).
 * The version is immutable, so it is kept on the contract: terms come from the document
 * every check loads already, with no extra read. A quantity change closes the segment and
 * opens another one with the same pinned version.
 */
export interface AddOnSegment {
  addOn: AddOnVersionDoc;
  quantity: number;
  effectiveAt: Date;
  endsAt: Date | null;
}
