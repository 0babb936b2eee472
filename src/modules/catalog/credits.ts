/**
 * Credit costs (R14): an entitlement whose usage burns units of a credit feature. The
 * rules a plan must obey are checked here, for plans and contract overrides alike.
 */
import { BadInputError } from '../../shared/errors.js';
import { parseQuantity } from '../../shared/quantity.js';
import type { CreditCost, EntitlementTerms, FeatureDoc } from './model.js';

export interface CreditCostInputShape {
  feature: string;
  perUnit: string;
}

const KEY = /^[a-z][a-z0-9_]{0,63}$/;

/** `perUnit` > 0 with up to 6 decimals, and a valid key other than the burning feature's own. */
export function parseCreditCost(input: CreditCostInputShape, burning: FeatureDoc, field: string): CreditCost {
  if (!KEY.test(input.feature)) {
    throw new BadInputError(`${field}.feature "${input.feature.slice(0, 70)}" is not a valid feature key.`, { field: `${field}.feature` });
  }
  if (burning.type !== 'METERED') {
    throw new BadInputError(`${field} applies only to METERED features; "${burning._id}" is ${burning.type}. Remove it.`, { field });
  }
  if (input.feature === burning._id) {
    throw new BadInputError(
      `${field}.feature: "${burning._id}" cannot burn credits of itself; name the credit feature (e.g. "ai_credits").`,
      {
        field: `${field}.feature`,
      },
    );
  }
  return { feature: input.feature, perUnit: parseQuantity(input.perUnit, { field: `${field}.perUnit` }) };
}

/**
 * The links of one plan version (or one contract's terms): every credit feature exists,
 * is METERED, has an entitlement of its own here, and does not itself burn credits (no
 * chains); a burning feature is not pooled (a pool member's burn is not supported).
 */
export function assertCreditLinks(
  entitlements: readonly EntitlementTerms[],
  features: ReadonlyMap<string, Pick<FeatureDoc, '_id' | 'type'>>,
  fieldOf: (feature: string) => string,
): void {
  const byFeature = new Map(entitlements.map((terms) => [terms.feature, terms]));
  for (const terms of entitlements) {
    if (!terms.credits) continue;
    const field = `${fieldOf(terms.feature)}.credits`;
    const credit = features.get(terms.credits.feature);
    if (!credit) {
      throw new BadInputError(
        `${field}.feature: unknown feature "${terms.credits.feature}"; define the credit feature with defineFeature first.`,
        {
          field: `${field}.feature`,
        },
      );
    }
    if (credit.type !== 'METERED') {
      throw new BadInputError(`${field}.feature: credit feature "${credit._id}" is ${credit.type}; a credit feature must be METERED.`, {
        field: `${field}.feature`,
      });
    }
    const creditTerms = byFeature.get(credit._id);
    if (!creditTerms) {
      throw new BadInputError(
        `${field}.feature: there is no entitlement for credit feature "${credit._id}"; add one (its included amount is the credit balance).`,
        { field: `${field}.feature` },
      );
    }
    if (creditTerms.credits) {
      throw new BadInputError(
        `${field}.feature: credit feature "${credit._id}" itself burns credits of "${creditTerms.credits.feature}"; chains are not allowed.`,
        { field: `${field}.feature` },
      );
    }
    if (terms.pooled) {
      throw new BadInputError(
        `${field}: a pooled entitlement cannot burn credits (members' burns are not supported); remove pooled or credits.`,
        { field },
      );
    }
  }
}

/** A plan's entitlements with one contract's overrides laid over them (for assertCreditLinks). */
export function withOverrides(
  planEntitlements: readonly EntitlementTerms[],
  overrides: Readonly<Record<string, Partial<Omit<EntitlementTerms, 'feature'>>>>,
): EntitlementTerms[] {
  const byFeature = new Map(planEntitlements.map((terms) => [terms.feature, terms]));
  for (const [feature, override] of Object.entries(overrides)) {
    const base = byFeature.get(feature);
    // A feature only an override names counts as an entitlement once it is enabled.
    if (base || override.enabled === true) byFeature.set(feature, { ...(base ?? ({ feature } as EntitlementTerms)), ...override, feature });
  }
  return [...byFeature.values()];
}
