import type DataLoader from 'dataloader';
import type { Micros } from '../../shared/quantity.js';
import type { PlanVersionDoc } from '../catalog/model.js';
import { createCatalogLoaders } from '../catalog/loaders.js';
import type { CatalogRepository } from '../catalog/repository.js';
import { createContractLoaders } from '../contracts/loaders.js';
import type { ContractDoc } from '../contracts/model.js';
import { isInForceAt, pinPlanId, planPinAt } from '../contracts/plan-history.js';
import type { ContractRepository } from '../contracts/repository.js';
import type { CounterReader } from '../usage/counters.js';
import { buildEntitlementView, decide, type Decision, type EntitlementView } from './decision.js';
import { NO_GRANTS, type GrantedSource } from './granted.js';
import { contractFeatures, mergeEffectiveTerms, planIdsNeeded } from './merge.js';
import type { EffectiveTerms } from './model.js';

export interface TermsRequest {
  accountId: string;
  feature: string;
}

export interface CheckRequest extends TermsRequest {
  requested: Micros;
}

/** Terms plus the two figures other modules own. */
export interface EntitlementState {
  terms: EffectiveTerms;
  used: Micros;
  granted: Micros;
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
 * Effective entitlements and decisions for many (account, feature) pairs at once, in a
 * bounded number of queries whatever their number: one for contracts, at most one for
 * feature types and one for plan versions (both immutable, cached process-wide), one for
 * counters, and whatever the grants source needs. Contracts and counters are always read
 * fresh, so a check sees a contract change or usage made a moment ago on any instance.
 */
export class EntitlementService {
  constructor(
    private readonly deps: {
      contracts: ContractRepository;
      catalog: CatalogRepository;
      counters: CounterReader;
      granted?: GrantedSource;
    },
  ) {}

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
      mergeEffectiveTerms({ accountId, feature, featureType: featureTypes.get(feature) ?? null, contracts: contractsOf.get(accountId)!, plans, at }),
    );
  }

  /** Terms plus `used` (one counter query) and `granted` for each pair. */
  async evaluate(requests: readonly TermsRequest[], at: Date, sources?: TermsSources): Promise<EntitlementState[]> {
    return this.withFigures(await this.resolveTerms(requests, at, sources), at);
  }

  async entitlements(requests: readonly TermsRequest[], at: Date, sources?: TermsSources): Promise<EntitlementView[]> {
    return (await this.evaluate(requests, at, sources)).map(({ terms, used, granted }) => buildEntitlementView(terms, used, granted));
  }

  async check(requests: readonly CheckRequest[], at: Date, sources?: TermsSources): Promise<Decision[]> {
    const states = await this.evaluate(requests, at, sources);
    return states.map(({ terms, used, granted }, i) => decide(terms, used, granted, requests[i]!.requested));
  }

  /** The features an account's contracts in force at `at` speak about, sorted. */
  async featuresOfAccount(contracts: readonly ContractDoc[], at: Date, sources: TermsSources = this.newSources()): Promise<string[]> {
    const plans = await this.loadPlans(contracts, at, sources);
    const keys = contracts
      .filter((contract) => isInForceAt(contract, at))
      .flatMap((contract) => contractFeatures(contract, plans.get(pinPlanId(planPinAt(contract, at)))));
    return [...new Set(keys)].sort();
  }

  /**
   * One contract's own terms, as if it were the account's only contract. Usage and grants
   * are counted per account, so `used` and `granted` are the account's for the period.
   * A contract not in force (ended, not started, suspended) lists its features without access.
   */
  async contractEntitlements(contract: ContractDoc, at: Date, sources: TermsSources = this.newSources()): Promise<EntitlementView[]> {
    const planId = pinPlanId(planPinAt(contract, at));
    const plan = await sources.planVersionById.load(planId);
    const plans = new Map(plan ? [[planId, plan]] : []);
    const features = contractFeatures(contract, plan).sort();
    const featureTypes = await this.deps.catalog.findFeatureTypes(features);
    const terms = features.map((feature) =>
      mergeEffectiveTerms({ accountId: contract.accountId, feature, featureType: featureTypes.get(feature) ?? null, contracts: [contract], plans, at }),
    );
    return (await this.withFigures(terms, at)).map(({ terms, used, granted }) => buildEntitlementView(terms, used, granted));
  }

  private async loadPlans(contracts: readonly ContractDoc[], at: Date, sources: TermsSources): Promise<Map<string, PlanVersionDoc>> {
    const ids = planIdsNeeded(contracts, at);
    const docs = loaded(await sources.planVersionById.loadMany(ids));
    return new Map(docs.filter((doc): doc is PlanVersionDoc => doc !== null).map((doc) => [doc._id, doc]));
  }

  private async withFigures(terms: EffectiveTerms[], at: Date): Promise<EntitlementState[]> {
    const counterIds = [...new Set(terms.flatMap((entry) => (entry.counterId ? [entry.counterId] : [])))];
    const [used, granted] = await Promise.all([
      this.deps.counters.usedByIds(counterIds),
      (this.deps.granted ?? NO_GRANTS).grantedFor(terms, at),
    ]);
    return terms.map((entry, i) => ({ terms: entry, used: entry.counterId ? (used.get(entry.counterId) ?? 0n) : 0n, granted: granted[i] ?? 0n }));
  }
}
