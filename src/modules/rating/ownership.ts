/**
 * Which invoice rates a usage period, and against which terms: the rule that bills every
 * unit once (docs/rating.md, "Shared features").
 *
 * A metered feature several contracts of an account enable is one balance (R4): usage at
 * instant t lands in ONE counter, the usage period of the oldest contract contributing at
 * t. A counter is therefore rated once, by its *owner*, decided over the whole usage
 * period rather than at whatever instant the invoice being rated happens to look at:
 *
 * - the contributors of counter X are the contracts that contributed to the merge (R4:
 *   in force, a status giving access, the feature enabled) at some instant of X at which
 *   usage landed in X, with each contract's status as it was at that instant (the status
 *   history), not as it is now;
 * - the owner is the oldest contributor (startsAt, then id). It is a contract whose own
 *   usage period is X, so its invoice asks for X; every other contract's invoice leaves X
 *   out, however it has ended, been canceled or changed since;
 * - the terms: the included amounts of all contributors summed (unlimited wins), and the
 *   lowest overage price per unit, each contributor's terms being those of the pin in force
 *   at the last instant of X within its term, startsAt to endsAt (R3). So a unit counted INCLUDED
 *   against the merged capacity at any moment is never billed as overage because a
 *   contributor ended or was canceled later in the period.
 *
 * The decision reads only the past (instants before `now`), and it is recorded when the
 * first invoice that covers X is finalised (whoever owns it); from then on every invoice
 * follows the record, so later changes to a contract (status, endsAt, plan) never move a
 * closed usage period to another invoice or change its terms.
 *
 * Pure: no I/O, property-tested in ownership.test.ts.
 */
import type { OverageTerms, PlanVersionDoc } from '../catalog/index.js';
import { compareOldestFirst, type ContractDoc, asOf, pinPlanId, pinsOf, planPinAt, statusesOf } from '../contracts/index.js';
import type { Period } from '../../shared/periods.js';
import { contractTerms, mergeEffectiveTerms, unitOveragePrice } from '../entitlements/index.js';
import { counterId } from '../../shared/counter-key.js';
import type { Micros } from '../../shared/quantity.js';

export interface UsageOwnership {
  counterId: string;
  feature: string;
  periodStart: Date;
  /** Null for a lifetime (NEVER) usage period. */
  periodEnd: Date | null;
  /** The contract whose invoice rates the counter. */
  ownerId: string;
  /** Every contract whose terms the rating merges, oldest first (the owner is the first). */
  contributorIds: string[];
  /** Null: unlimited. */
  included: Micros | null;
  overage: OverageTerms | null;
  /** The last instant of the period (before now) at which usage landed in it: its grants' burn is read there. */
  at: Date;
}

export interface OwnershipInput {
  accountId: string;
  feature: string;
  /** The usage period: one counter. */
  period: Period;
  /** Every contract of the account. */
  contracts: readonly ContractDoc[];
  /** Every plan version any pin of these contracts names. */
  plans: ReadonlyMap<string, PlanVersionDoc>;
  now: Date;
}

/** The last instant of `period` before `lifeEnd` and `now` (never before the period starts). */
export function governingInstant(period: { start: Date; end: Date | null }, lifeEnd: Date | null, now: Date): Date {
  const end = Math.min(period.end?.getTime() ?? Infinity, lifeEnd?.getTime() ?? Infinity, now.getTime());
  return new Date(Math.max(period.start.getTime(), end - 1));
}

/** Null when no contract ever contributed while usage landed in this counter (it holds none). */
export function decideOwnership({ accountId, feature, period, contracts, plans, now }: OwnershipInput): UsageOwnership | null {
  const id = counterId(accountId, feature, period.start);
  const from = period.start.getTime();
  const horizon = Math.min(period.end?.getTime() ?? Infinity, now.getTime() + 1);
  if (horizon <= from) return null;

  // The merge can only change where a contract starts, ends, changes status or plan.
  const breaks = new Set<number>([from]);
  const add = (at: Date | null | undefined) => {
    const t = at?.getTime();
    if (t !== undefined && t > from && t < horizon) breaks.add(t);
  };
  for (const contract of contracts) {
    add(contract.startsAt);
    add(contract.endsAt);
    add(contract.canceledAt);
    for (const change of statusesOf(contract)) add(change.at);
    for (const pin of pinsOf(contract)) add(pin.effectiveAt);
    for (const segment of contract.addOns ?? []) [segment.effectiveAt, segment.endsAt].forEach(add);
  }
  const instants = [...breaks].sort((a, b) => a - b);

  const contributed = new Set<string>();
  let lastInstant = from;
  instants.forEach((t, i) => {
    const at = new Date(t);
    const merged = mergeEffectiveTerms({
      accountId,
      feature,
      featureType: 'METERED',
      contracts: contracts.map((contract) => asOf(contract, at)),
      plans,
      at,
    });
    if (!merged.hasAccess || merged.counterId !== id) return;
    for (const contractId of merged.contractIds) contributed.add(contractId);
    lastInstant = (instants[i + 1] ?? horizon) - 1;
  });
  if (contributed.size === 0) return null;

  const members = contracts
    .filter((contract) => contributed.has(contract._id))
    .sort(compareOldestFirst)
    .map((contract) => {
      // R3's instant: the period's last within the contract's term (not its status, which
      // only says whether it contributed).
      const at = governingInstant(period, contract.endsAt, now);
      return { contract, at, terms: contractTerms(contract, plans.get(pinPlanId(planPinAt(contract, at))), feature, at) };
    })
    // The pin that governs the period decides it (R3): a feature it disables is not rated.
    .filter((member) => member.terms?.enabled === true);
  if (members.length === 0) return null;

  let included: Micros | null = 0n;
  let overage: OverageTerms | null = null;
  for (const { terms } of members) {
    included = included === null || terms!.included === null ? null : included + terms!.included;
    const price = terms!.overage;
    if (price && (overage === null || unitOveragePrice(price).lessThan(unitOveragePrice(overage)))) overage = price;
  }
  const owner = members[0]!;
  return {
    counterId: id,
    feature,
    periodStart: period.start,
    periodEnd: period.end,
    ownerId: owner.contract._id,
    contributorIds: members.map((member) => member.contract._id),
    included,
    overage,
    at: new Date(lastInstant),
  };
}
