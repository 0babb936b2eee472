/**
 * The effective entitlement of one feature for one account at one instant (R4), as pure
 * functions over already-loaded documents: no I/O, so every rule is unit-tested directly.
 */
import type { Money } from '../../shared/money.js';
import {
  DEFAULT_THRESHOLDS,
  type Enforcement,
  type EntitlementTerms,
  type FeatureType,
  hasQuantities,
  type OverageTerms,
  overageComparisonPrice,
  type PlanVersionDoc,
} from '../catalog/index.js';
import {
  compareOldestFirst,
  type ContractDoc,
  type ContractStatus,
  isInForceAt,
  pinPlanId,
  planPinAt,
  settleTrial,
} from '../contracts/index.js';
import { addOnFeaturesAt, sumIncluded, withAddOns } from './add-on-terms.js';
import { counterId, gaugeLevelId } from '../../shared/counter-key.js';
import type { AccessStatus, EffectiveTerms } from './model.js';
import { periodContaining, type ResetPeriod } from '../../shared/periods.js';
import { mergeAllow, mergeRateLimit } from './rules.js';

/** Statuses that give access (R4); PAST_DUE does, flagged delinquent. */
const GRANTING: ReadonlySet<ContractStatus> = new Set<ContractStatus>(['TRIALING', 'ACTIVE', 'PAST_DUE']);

/** Lower is less restrictive: the merge keeps the least restrictive (NONE > SOFT > HARD). */
const RESTRICTIVENESS: Record<Enforcement, number> = { NONE: 0, SOFT: 1, HARD: 2 };

/** A feature a contract's plan does not list: off, until an override says otherwise. */
function absentTerms(feature: string): EntitlementTerms {
  return {
    feature,
    enabled: false,
    included: 0n,
    resetPeriod: 'MONTH',
    enforcement: 'HARD',
    grace: 0n,
    overage: null,
    thresholds: [...DEFAULT_THRESHOLDS],
    config: null,
  };
}

/**
 * One contract's terms for a feature under a given plan version: the plan's entitlement
 * with the contract's overrides laid over it, and, given an instant, merged with the
 * add-ons in force then (R17, add-on-terms.ts). Null when none mentions the feature.
 */
export function contractTerms(
  contract: ContractDoc,
  plan: PlanVersionDoc | null | undefined,
  feature: string,
  at?: Date,
): EntitlementTerms | null {
  const base = plan?.entitlements.find((terms) => terms.feature === feature);
  const override = contract.overrides?.[feature];
  const own = !base && !override ? null : { ...(base ?? absentTerms(feature)), ...override, feature };
  return at ? withAddOns(own, contract, feature, at) : own;
}

/** The features a contract speaks about at `at`: its plan's, any it overrides, and (given `at`) its add-ons'. */
export function contractFeatures(contract: ContractDoc, plan: PlanVersionDoc | null | undefined, at?: Date): string[] {
  return [
    ...new Set([
      ...(plan?.entitlements.map((terms) => terms.feature) ?? []),
      ...Object.keys(contract.overrides ?? {}),
      ...(at ? addOnFeaturesAt(contract, at) : []),
    ]),
  ];
}

export interface MergeInput {
  accountId: string;
  /** The requested feature key, and its type in the catalog (null when not defined). */
  feature: string;
  featureType: FeatureType | null;
  /** The account's contracts, any order. */
  contracts: readonly ContractDoc[];
  /** Plan versions by `key@version`; must hold the pin in force at `at` of each contract in force. */
  plans: ReadonlyMap<string, PlanVersionDoc>;
  at: Date;
}

/** Plan version ids needed to merge any feature of these contracts at `at`. */
export function planIdsNeeded(contracts: readonly ContractDoc[], at: Date): string[] {
  return [...new Set(contracts.filter((contract) => isInForceAt(contract, at)).map((contract) => pinPlanId(planPinAt(contract, at))))];
}

/**
 * Merges every contract in force at `at` (startsAt <= at < endsAt) whose status gives
 * access and whose terms enable the feature (R4):
 * - BOOLEAN: OR (any enabling contract gives access);
 * - included: the sum, and unlimited (null) wins;
 * - enforcement: the least restrictive;
 * - grace: the sum;
 * - overage: the lowest price per unit (unitPrice ÷ per; tiered prices by their first
 *   billable unit, see unitOveragePrice), oldest contract on a tie;
 * - thresholds: the union, sorted;
 * - config: a shallow merge, oldest first (a newer contract's keys win);
 * - delinquent when any contributing contract is PAST_DUE.
 * The usage period is the anniversary period of the oldest contributing contract's
 * billing anchor, with that contract's reset period.
 *
 * Without a contributing contract: UNKNOWN_FEATURE for a feature not in the catalog,
 * NOT_ENTITLED for an account with no contract or whose active contracts do not enable
 * the feature, and CONTRACT_INACTIVE when no contract gives access now (suspended,
 * canceled, ended or not started) or when only an inactive one would enable it.
 */
export function mergeEffectiveTerms({ accountId, feature, featureType, contracts, plans, at }: MergeInput): EffectiveTerms {
  if (!featureType) return deniedTerms(accountId, feature, null, 'UNKNOWN_FEATURE');

  // A trial past its end has converted at that instant, whatever has run since (R18).
  const inForce = contracts
    .filter((contract) => isInForceAt(contract, at))
    .map((contract) => settleTrial(contract, at))
    .sort(compareOldestFirst);
  const withTerms = inForce.map((contract) => {
    const plan = plans.get(pinPlanId(planPinAt(contract, at))) ?? null;
    return { contract, plan, terms: contractTerms(contract, plan, feature, at) };
  });
  const contributing = withTerms.filter(({ contract, terms }) => GRANTING.has(contract.status) && terms?.enabled === true);

  if (contributing.length === 0) {
    const anyGranting = inForce.some((contract) => GRANTING.has(contract.status));
    const inactiveWouldEnable = withTerms.some(({ contract, terms }) => !GRANTING.has(contract.status) && terms?.enabled === true);
    const access: AccessStatus =
      contracts.length === 0 ? 'NOT_ENTITLED' : !anyGranting || inactiveWouldEnable ? 'CONTRACT_INACTIVE' : 'NOT_ENTITLED';
    const known = withTerms.find(({ terms }) => terms !== null)?.terms;
    return deniedTerms(accountId, feature, featureType, access, known?.resetPeriod);
  }

  const oldest = contributing[0]!;
  const all = contributing.map(({ terms }) => terms!);
  // GAUGE (R16) has the quantity terms of METERED; its level document spans periods.
  const metered = hasQuantities(featureType);
  const resetPeriod = oldest.terms!.resetPeriod;
  const period = metered ? periodContaining(oldest.contract.billingAnchor, resetPeriod, at) : null;
  return {
    accountId,
    feature,
    featureType,
    access: 'ENTITLED',
    hasAccess: true,
    delinquent: contributing.some(({ contract }) => contract.status === 'PAST_DUE'),
    enforcement: all.map((terms) => terms.enforcement).reduce((a, b) => (RESTRICTIVENESS[b] < RESTRICTIVENESS[a] ? b : a)),
    included: metered ? sumIncluded(all) : null,
    grace: metered ? all.reduce((sum, terms) => sum + terms.grace, 0n) : 0n,
    overage: metered ? cheapestOverage(all) : null,
    thresholds: metered ? [...new Set(all.flatMap((terms) => terms.thresholds))].sort((a, b) => a - b) : [],
    config: mergeConfig(all.map((terms) => terms.config)),
    resetPeriod,
    period,
    counterId: period ? (featureType === 'GAUGE' ? gaugeLevelId(accountId, feature) : counterId(accountId, feature, period.start)) : null,
    contractIds: contributing.map(({ contract }) => contract._id),
    currency: oldest.plan?.currency ?? null,
    // Only present when true: terms without pools keep their exact shape.
    ...(all.some((terms) => terms.pooled === true) ? { pooled: true } : {}),
    ...rulesOf(contributing, metered),
    // R14: the oldest contributing contract that sets a credit cost decides it.
    ...(metered && all.some((terms) => terms.credits) ? { credits: all.find((terms) => terms.credits)!.credits! } : {}),
  };
}

/** R19, R20 (entitlements/rules.ts); present only when set, so terms without them keep their exact shape. */
function rulesOf(contributing: ReadonlyArray<{ contract: ContractDoc; terms: EntitlementTerms | null }>, metered: boolean) {
  const all = contributing.map(({ terms }) => terms!);
  const rateLimit = metered ? mergeRateLimit(all) : null;
  const allow = mergeAllow(contributing.map(({ contract, terms }) => ({ contractId: contract._id, terms: terms! })));
  return { ...(rateLimit ? { rateLimit } : {}), ...(allow ? { allow } : {}) };
}

function deniedTerms(
  accountId: string,
  feature: string,
  featureType: FeatureType | null,
  access: Exclude<AccessStatus, 'ENTITLED'>,
  resetPeriod: ResetPeriod = 'MONTH',
): EffectiveTerms {
  return {
    accountId,
    feature,
    featureType,
    access,
    hasAccess: false,
    delinquent: false,
    enforcement: 'HARD',
    included: hasQuantities(featureType) ? 0n : null,
    grace: 0n,
    overage: null,
    thresholds: [],
    config: null,
    resetPeriod,
    period: null,
    counterId: null,
    contractIds: [],
    currency: null,
  };
}

/**
 * The price R4 compares, exact: one unit's (unitPrice ÷ per); for a tiered price (R15)
 * what the first billable unit costs, the first tier's unit price plus its flat fee
 * (catalog overageComparisonPrice). It does not depend on usage, so the merge is fixed
 * for an instant; the oldest contract wins a tie.
 */
export function unitOveragePrice(overage: OverageTerms): InstanceType<typeof Money> {
  return overageComparisonPrice(overage);
}

function cheapestOverage(all: readonly EntitlementTerms[]): OverageTerms | null {
  let best: OverageTerms | null = null;
  for (const { overage } of all) {
    if (overage && (best === null || unitOveragePrice(overage).lessThan(unitOveragePrice(best)))) best = overage;
  }
  return best;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Oldest first, so newer contracts' keys win; a non-object config replaces what came before. */
function mergeConfig(configs: readonly unknown[]): unknown {
  let merged: unknown = null;
  for (const config of configs) {
    if (config === null || config === undefined) continue;
    merged = isPlainObject(merged) && isPlainObject(config) ? { ...merged, ...config } : config;
  }
  return merged;
}
