import { assertCreditLinks, type CatalogReads, withOverrides } from '../catalog/index.js';
import type { ContractDoc } from './model.js';

/**
 * R14: an override that makes a feature burn credits must leave the contract's terms
 * valid under its current plan version: the same rules as publishing a plan.
 */
export async function assertOverrideCredits(
  catalog: Pick<CatalogReads, 'findPlanVersion' | 'findFeatures'>,
  contract: ContractDoc,
  feature: string,
): Promise<void> {
  const plan = await catalog.findPlanVersion(contract.planKey, contract.planVersion);
  const terms = withOverrides(plan?.entitlements ?? [], contract.overrides ?? {});
  const keys = [...new Set(terms.flatMap((entry) => [entry.feature, ...(entry.credits ? [entry.credits.feature] : [])]))];
  const features = new Map((await catalog.findFeatures(keys)).map((doc) => [doc._id, doc]));
  assertCreditLinks(
    terms.filter((entry) => entry.feature === feature || !entry.credits),
    features,
    () => 'input',
  );
}
