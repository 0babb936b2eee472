/**
 * A contract's terms for one feature with its add-ons (R17): the plan's terms (with the
 * contract's overrides) merged with every add-on segment in force at the instant, each
 * add-on's `included` multiplied by its quantity, under the R4 rules that merge contracts:
 * enabled is an OR, included the sum (unlimited wins), enforcement the least restrictive,
 * grace the sum, the overage price the lowest per unit, thresholds the union, config a
 * shallow merge in order. The reset period stays the plan's when the plan enables the
 * feature (the usage period does not move), else the first add-on's.
 *
 * The add-on versions are copied on the contract document when attached, so this needs no
 * read beyond the contract itself.
 */
import { Money } from '../../shared/money.js';
import { formatQuantity, type Micros } from '../../shared/quantity.js';
import type { Enforcement, EntitlementTerms, OverageTerms } from '../catalog/index.js';
import { addOnsAt, type ContractDoc } from '../contracts/index.js';

const RESTRICTIVENESS: Record<Enforcement, number> = { NONE: 0, SOFT: 1, HARD: 2 };

/** The add-ons' terms for `feature` in force at `at`, `included` × quantity; enabled ones only. */
export function addOnTermsAt(contract: ContractDoc, feature: string, at: Date): EntitlementTerms[] {
  if (!contract.addOns || contract.addOns.length === 0) return [];
  return addOnsAt(contract, at).flatMap((segment) => {
    const terms = segment.addOn.entitlements.find((candidate) => candidate.feature === feature);
    if (!terms?.enabled) return [];
    return [{ ...terms, included: terms.included === null ? null : terms.included * BigInt(segment.quantity) }];
  });
}

/** The features the add-ons in force at `at` speak about. */
export function addOnFeaturesAt(contract: ContractDoc, at: Date): string[] {
  if (!contract.addOns || contract.addOns.length === 0) return [];
  return addOnsAt(contract, at).flatMap((segment) => segment.addOn.entitlements.map((terms) => terms.feature));
}

/** `base` (the plan's terms with overrides; null when neither names the feature) merged with the add-ons in force at `at`. */
export function withAddOns(base: EntitlementTerms | null, contract: ContractDoc, feature: string, at: Date): EntitlementTerms | null {
  const extras = addOnTermsAt(contract, feature, at);
  if (extras.length === 0) return base;
  const all = [...(base?.enabled ? [base] : []), ...extras];
  const first = all[0]!;
  return {
    ...first,
    feature,
    enabled: true,
    included: sumIncluded(all),
    enforcement: all.map((terms) => terms.enforcement).reduce((a, b) => (RESTRICTIVENESS[b] < RESTRICTIVENESS[a] ? b : a)),
    grace: all.reduce((sum, terms) => sum + terms.grace, 0n),
    overage: cheapest(all),
    thresholds: [...new Set(all.flatMap((terms) => terms.thresholds))].sort((a, b) => a - b),
    config: all.reduce<unknown>((merged, terms) => mergeConfig(merged, terms.config), null),
  };
}

/** R4: included amounts add up; one unlimited term makes the sum unlimited (null). */
export function sumIncluded(all: readonly EntitlementTerms[]): Micros | null {
  let sum = 0n;
  for (const terms of all) {
    if (terms.included === null) return null;
    sum += terms.included;
  }
  return sum;
}

function perUnit(overage: OverageTerms): InstanceType<typeof Money> {
  return new Money(overage.unitPrice).div(new Money(formatQuantity(overage.per)));
}

function cheapest(all: readonly EntitlementTerms[]): OverageTerms | null {
  let best: OverageTerms | null = null;
  for (const { overage } of all) if (overage && (best === null || perUnit(overage).lessThan(perUnit(best)))) best = overage;
  return best;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function mergeConfig(merged: unknown, config: unknown): unknown {
  if (config === null || config === undefined) return merged;
  return isPlainObject(merged) && isPlainObject(config) ? { ...merged, ...config } : config;
}
