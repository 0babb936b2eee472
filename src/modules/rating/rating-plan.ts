/**
 * A rating before usage is read: the billing period, its base fees, and the usage periods
 * this invoice rates (those it owns) or names as rated elsewhere.
 */
import type { Micros } from '../../shared/quantity.js';
import type { Period } from '../../shared/periods.js';
import type { FeatureDoc } from '../catalog/index.js';
import type { ContractDoc } from '../contracts/index.js';
import type { BaseFeeCharge, BilledPeriod } from './base-fee.js';
import type { OveragePrice } from './overage.js';
import type { UsageOwnership } from './ownership.js';
import type { RatedElsewhere } from './rate.js';

/** One usage period to rate: which counter, and the terms that govern it. */
export interface PlannedUsage {
  feature: FeatureDoc;
  period: Period;
  /** The instant whose pin governs the period (R3): its last instant, or now while it runs. */
  at: Date;
  counterId: string;
  terms: { included: Micros | null; price: OveragePrice | null };
  owner: UsageOwnership;
}

/** Everything about a rating that does not depend on usage. */
export interface RatingPlan {
  contract: ContractDoc;
  period: BilledPeriod;
  currency: string;
  baseFees: BaseFeeCharge[];
  /** R15: the prorated minimum commit of each plan pin in the period; empty without one. */
  minimumCommits: BaseFeeCharge[];
  /** The usage periods this invoice rates: those it owns. */
  usage: PlannedUsage[];
  /** Every usage period of this contract the billing period covers, owned or not. */
  candidates: Array<{ feature: FeatureDoc; period: Period; counterId: string }>;
  owners: Map<string, UsageOwnership & { recorded: boolean }>;
}

/** Per feature this invoice owns no usage period of, its last usage period another contract owns. */
export function ratedElsewhere(plan: RatingPlan): RatedElsewhere[] {
  const owned = new Set(plan.usage.map((usage) => usage.feature._id));
  const found = new Map<string, RatedElsewhere>();
  for (const { feature, period, counterId: id } of plan.candidates) {
    const owner = plan.owners.get(id);
    if (owned.has(feature._id) || !owner || owner.ownerId === plan.contract._id) continue;
    found.set(feature._id, { feature: feature._id, featureName: feature.name, period, ownerId: owner.ownerId });
  }
  return [...found.values()];
}
