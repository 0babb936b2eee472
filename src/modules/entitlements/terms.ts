import type DataLoader from 'dataloader';
import { type CatalogReads, createCatalogLoaders, type PlanVersionDoc } from '../catalog/index.js';
import { type ContractDoc, type ContractReads, createContractLoaders, isInForceAt, pinPlanId, planPinAt } from '../contracts/index.js';
import { contractFeatures, mergeEffectiveTerms, planIdsNeeded } from './merge.js';
import type { EffectiveTerms } from './model.js';

export interface TermsRequest {
  accountId: string;
  feature: string;
}

/**
 * The documents terms are built from, behind per-request DataLoaders (the request's
 * `ctx.loaders` satisfies this), so plan versions and contracts referenced anywhere in
 * one request are read once.
 */
export interface TermsSources {
  contractsByAccount: DataLoader<string, ContractDoc[]>;
  planVersionById: DataLoader<string, PlanVersionDoc | null>;
}

function loaded<V>(values: Array<V | Error>): V[] {
  for (const value of values) if (value instanceof Error) throw value;
  return values as V[];
}

/**
 * Merged contract terms (R3, R4) from the contracts and the catalog alone: no usage and
 * no grants. The usage engine enforces with these, grants burn against their included
 * amounts, and the entitlement service adds `used` and `granted` to them.
 */
export class TermsService {
  constructor(private readonly deps: { contracts: ContractReads; catalog: CatalogReads }) {}

  /** Fresh loaders, for callers outside a GraphQL request. */
  newSources(): TermsSources {
    return { ...createContractLoaders(this.deps.contracts), ...createCatalogLoaders(this.deps.catalog) };
  }

  /** Merged terms (R4) of each pair at `at`, in request order. */
  async resolveTerms(requests: readonly TermsRequest[], at: Date, sources: TermsSources = this.newSources()): Promise<EffectiveTerms[]> {
    if (requests.length === 0) return [];
    const accountIds = [...new Set(requests.map((request) => request.accountId))];
    const featureKeys = [...new Set(requests.map((request) => request.feature))];
    const [contractLists, featureTypes] = await Promise.all([
      sources.contractsByAccount.loadMany(accountIds).then(loaded),
      this.deps.catalog.findFeatureTypes(featureKeys),
    ]);
    const contractsOf = new Map(accountIds.map((id, i) => [id, contractLists[i]!]));
    const plans = await this.loadPlans(contractLists.flat(), at, sources);
    return requests.map(({ accountId, feature }) =>
      mergeEffectiveTerms({
        accountId,
        feature,
        featureType: featureTypes.get(feature) ?? null,
        contracts: contractsOf.get(accountId)!,
        plans,
        at,
      }),
    );
  }

  /** The features an account's contracts in force at `at` speak about, sorted. */
  async featuresOfAccount(contracts: readonly ContractDoc[], at: Date, sources: TermsSources = this.newSources()): Promise<string[]> {
    const plans = await this.loadPlans(contracts, at, sources);
    const keys = contracts
      .filter((contract) => isInForceAt(contract, at))
      .flatMap((contract) => contractFeatures(contract, plans.get(pinPlanId(planPinAt(contract, at)))));
    return [...new Set(keys)].sort();
  }

  /** One contract's own terms per feature, as if it were the account's only contract. */
  async ownTerms(contract: ContractDoc, at: Date, sources: TermsSources = this.newSources()): Promise<EffectiveTerms[]> {
    const planId = pinPlanId(planPinAt(contract, at));
    const plan = await sources.planVersionById.load(planId);
    const plans = new Map(plan ? [[planId, plan]] : []);
    const features = contractFeatures(contract, plan).sort();
    const featureTypes = await this.deps.catalog.findFeatureTypes(features);
    return features.map((feature) =>
      mergeEffectiveTerms({
        accountId: contract.accountId,
        feature,
        featureType: featureTypes.get(feature) ?? null,
        contracts: [contract],
        plans,
        at,
      }),
    );
  }

  private async loadPlans(contracts: readonly ContractDoc[], at: Date, sources: TermsSources): Promise<Map<string, PlanVersionDoc>> {
    const ids = planIdsNeeded(contracts, at);
    const docs = loaded(await sources.planVersionById.loadMany(ids));
    return new Map(docs.filter((doc): doc is PlanVersionDoc => doc !== null).map((doc) => [doc._id, doc]));
  }
}
