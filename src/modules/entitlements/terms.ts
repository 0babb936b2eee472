import DataLoader from 'dataloader';
import { type CatalogReads, createCatalogLoaders, type PlanVersionDoc } from '../catalog/index.js';
import {
  type ContractDoc,
  type ContractReads,
  type ContractTermsReads,
  createContractLoaders,
  isInForceAt,
  pinPlanId,
  planPinAt,
} from '../contracts/index.js';
import { contractFeatures, mergeEffectiveTerms, planIdsNeeded } from './merge.js';
import type { EffectiveTerms } from './model.js';
import { burnsCredits, burnTerms } from './credits.js';
import { drawsFromPool, type PoolLineage, poolTermsFor } from './pools.js';

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
  constructor(
    private readonly deps: {
      contracts: ContractReads;
      catalog: CatalogReads;
      pools?: PoolLineage;
      /** The hot path's contracts, through the terms cache (docs/performance.md, "Terms cache"). */
      cached?: ContractTermsReads;
    },
  ) {}

  /** Fresh loaders, for callers outside a GraphQL request. */
  newSources(): TermsSources {
    return { ...createContractLoaders(this.deps.contracts), ...createCatalogLoaders(this.deps.catalog) };
  }

  /**
   * Sources for the hot path (checks and recordUsage): contracts through the terms cache,
   * plan versions from `base` (the request's, when it has them). A change made on this
   * instance is seen at once, one made on another within the cache's bound. Views keep the
   * request's fresh loaders.
   */
  hotSources(base?: TermsSources): TermsSources {
    const cached = this.deps.cached;
    if (!cached) return base ?? this.newSources();
    const contractsByAccount = new DataLoader<string, ContractDoc[]>(async (accountIds) => {
      const byAccount = new Map<string, ContractDoc[]>(accountIds.map((id) => [id, []]));
      for (const doc of await cached.termsByAccountIds(accountIds)) byAccount.get(doc.accountId)?.push(doc);
      return accountIds.map((id) => byAccount.get(id)!);
    });
    // No fresh contracts loader is built only to be replaced.
    const planVersionById = base?.planVersionById ?? createCatalogLoaders(this.deps.catalog).planVersionById;
    return { contractsByAccount, planVersionById };
  }

  /** Merged terms (R4) of each pair at `at`, in request order. */
  async resolveTerms(
    requests: readonly TermsRequest[],
    at: Date,
    sources: TermsSources = this.newSources(),
    /** Accounts whose contracts to load in the same query (the request's loader keeps them). */
    alsoLoad: readonly string[] = [],
  ): Promise<EffectiveTerms[]> {
    if (requests.length === 0) return [];
    const accountIds = [...new Set(requests.map((request) => request.accountId))];
    const featureKeys = [...new Set(requests.map((request) => request.feature))];
    const [contractLists, featureTypes] = await Promise.all([
      sources.contractsByAccount
        .loadMany([...new Set([...accountIds, ...alsoLoad])])
        .then(loaded)
        .then((lists) => lists.slice(0, accountIds.length)),
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

  /**
   * Like resolveTerms, and an account without an entitlement of its own draws on its
   * nearest pooled ancestor (R13): its terms are then the owner's, marked with `pool`.
   * Accounts with terms of their own cost no hierarchy read at all.
   */
  async resolveWithPools(
    requests: readonly TermsRequest[],
    at: Date,
    sources: TermsSources = this.newSources(),
  ): Promise<EffectiveTerms[]> {
    return this.withCredits(await this.resolvePools(requests, at, sources), at, sources);
  }

  /**
   * R14: a feature that burns credits is enforced with its credit feature's terms (the
   * credit counter, capacity, grants), marked with the burn. The credit features' terms
   * come from the contracts and plans already loaded: no further round trip for them.
   */
  private async withCredits(terms: EffectiveTerms[], at: Date, sources: TermsSources): Promise<EffectiveTerms[]> {
    const burning = terms.flatMap((entry, i) => (burnsCredits(entry) ? [i] : []));
    if (burning.length === 0) return terms;
    const credit = await this.resolveTerms(
      burning.map((i) => ({ accountId: terms[i]!.accountId, feature: terms[i]!.credits!.feature })),
      at,
      sources,
    );
    const result = [...terms];
    burning.forEach((i, j) => {
      result[i] = burnTerms(terms[i]!, credit[j]!);
    });
    return result;
  }

  private async resolvePools(requests: readonly TermsRequest[], at: Date, sources: TermsSources): Promise<EffectiveTerms[]> {
    const pools = this.deps.pools;
    // Members' likely ancestors' contracts come with the members' own, in one query.
    const likely = pools?.likelyAncestors ? [...new Set(requests.flatMap((request) => pools.likelyAncestors!(request.accountId)))] : [];
    const own = await this.resolveTerms(requests, at, sources, likely);
    if (!pools) return own;
    // The contracts were just loaded through the request's loader: no further read.
    const candidates = own.flatMap((terms, i) => (drawsFromPool(terms) ? [i] : []));
    const contracts = loaded(await sources.contractsByAccount.loadMany(candidates.map((i) => own[i]!.accountId)));
    const drawing = candidates.filter((i, j) => pools.mayDraw(own[i]!.accountId, contracts[j]!.length > 0));
    if (drawing.length === 0) return own;
    const lineages = await pools.lineage([...new Set(drawing.map((i) => own[i]!.accountId))]);
    const pairs = new Map<string, TermsRequest>();
    for (const i of drawing) {
      for (const ancestor of lineages.get(own[i]!.accountId)?.ancestors ?? []) {
        pairs.set(`${ancestor}\u0000${own[i]!.feature}`, { accountId: ancestor, feature: own[i]!.feature });
      }
    }
    if (pairs.size === 0) return own;
    const keys = [...pairs.keys()];
    const ancestorTerms = await this.resolveTerms([...pairs.values()], at, sources);
    const byKey = new Map(keys.map((key, i) => [key, ancestorTerms[i]!]));
    const result = [...own];
    for (const i of drawing) {
      const member = own[i]!;
      const pooled = poolTermsFor(member, lineages.get(member.accountId), (id) => byKey.get(`${id}\u0000${member.feature}`));
      if (pooled) result[i] = pooled;
    }
    return result;
  }

  /** Features an account draws from its ancestors' pools at `at` (for Account.entitlements). */
  async pooledFeaturesOf(accountId: string, at: Date, sources: TermsSources = this.newSources()): Promise<string[]> {
    if (!this.deps.pools) return [];
    const contracts = await sources.contractsByAccount.load(accountId);
    if (!this.deps.pools.mayDraw(accountId, contracts.length > 0)) return [];
    const ancestors = (await this.deps.pools.lineage([accountId])).get(accountId)?.ancestors ?? [];
    if (ancestors.length === 0) return [];
    const lists = loaded(await sources.contractsByAccount.loadMany(ancestors));
    const plans = await this.loadPlans(lists.flat(), at, sources);
    const keys = lists.flat().flatMap((contract) => {
      if (!isInForceAt(contract, at)) return [];
      const plan = plans.get(pinPlanId(planPinAt(contract, at)));
      return contractFeatures(contract, plan, at).filter((feature) => {
        const override = contract.overrides?.[feature];
        const base = plan?.entitlements.find((terms) => terms.feature === feature);
        return (override?.pooled ?? base?.pooled) === true;
      });
    });
    return [...new Set(keys)].sort();
  }

  /** The features an account's contracts in force at `at` speak about, sorted. */
  async featuresOfAccount(contracts: readonly ContractDoc[], at: Date, sources: TermsSources = this.newSources()): Promise<string[]> {
    const plans = await this.loadPlans(contracts, at, sources);
    const keys = contracts
      .filter((contract) => isInForceAt(contract, at))
      .flatMap((contract) => contractFeatures(contract, plans.get(pinPlanId(planPinAt(contract, at))), at));
    return [...new Set(keys)].sort();
  }

  /** One contract's own terms per feature, as if it were the account's only contract. */
  async ownTerms(contract: ContractDoc, at: Date, sources: TermsSources = this.newSources()): Promise<EffectiveTerms[]> {
    const planId = pinPlanId(planPinAt(contract, at));
    const plan = await sources.planVersionById.load(planId);
    const plans = new Map(plan ? [[planId, plan]] : []);
    const features = contractFeatures(contract, plan, at).sort();
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
