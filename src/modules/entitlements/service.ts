import type { Micros } from '../../shared/quantity.js';
import { hasQuantities } from '../catalog/index.js';
import type { ContractDoc } from '../contracts/index.js';
import { creditsFor, decisionInOwnUnits, viewInOwnUnits } from './credits.js';
import { buildEntitlementView, decide, type Decision, type EntitlementView } from './decision.js';
import type { GrantedSource } from './granted.js';
import type { EffectiveTerms } from './model.js';
import type { TermsRequest, TermsService, TermsSources } from './terms.js';
import { readRateWindows, ruleDecision, type RateWindowState } from './rules.js';

/** Most checks one `checkEntitlements` field answers (its own cap; the operation has a budget too). */
export const MAX_CHECKS = 1_000;

export interface CheckRequest extends TermsRequest {
  requested: Micros;
  /** R20: the request's dimensions (a validated JSON object), if any. */
  properties?: Record<string, unknown> | null;
}

/** Terms plus the two figures other modules own. */
export interface EntitlementState {
  terms: EffectiveTerms;
  used: Micros;
  granted: Micros;
  /** This account's own draw (R13): its share of a pool counter, or `used` when not pooled. */
  accountUsed: Micros;
  /** R14: a burning feature's own units in the period (`used` is then the credits burned by all). */
  ownUsed?: Micros;
}

/** What entitlements read of the usage module's counters: `used` per counter, members' shares of pools. */
export interface UsageTotals {
  usedByIds(ids: readonly string[]): Promise<Map<string, Micros>>;
  memberShares?(pairs: ReadonlyArray<{ counterId: string; memberId: string }>): Promise<Micros[]>;
  /** R19: units counted in these rate windows (by rateWindowId), read without writing. */
  rateWindows?(ids: readonly string[]): Promise<Map<string, RateWindowState>>;
  /** R14: burning features' own units recorded on their credit counters. */
  burnUsed?(pairs: ReadonlyArray<{ counterId: string; feature: string }>): Promise<Micros[]>;
}

/**
 * Effective entitlements and decisions for many (account, feature) pairs at once, in a
 * bounded number of queries whatever their number: one for contracts (pool members'
 * likely ancestors' included), at most one for feature types and one for plan versions
 * (both immutable, cached process-wide), one for the hierarchy when a pool member is
 * among them, one for counters, and whatever the grants source needs (a check reads
 * grants only where they decide, see `check`). Counters are always read fresh, so a
 * check sees usage recorded a moment ago on any instance. A check's contracts and
 * lineages come from the terms cache, and its grants from the grants cache: a terms
 * change or a grant made on this instance is seen at once, one made on another within
 * the caches' bound (docs/performance.md). Views read grants fresh.
 */
/** Checks (the hot path) read grants through the grants cache. */
const HOT = { cached: true } as const;

export class EntitlementService {
  constructor(
    private readonly deps: {
      terms: TermsService;
      counters: UsageTotals;
      granted: GrantedSource;
    },
  ) {}

  /** Fresh loaders, for callers outside a GraphQL request. */
  newSources(): TermsSources {
    return this.deps.terms.newSources();
  }

  /** Merged terms (R4) of each pair at `at`, in request order. */
  resolveTerms(requests: readonly TermsRequest[], at: Date, sources?: TermsSources): Promise<EffectiveTerms[]> {
    return this.deps.terms.resolveWithPools(requests, at, sources);
  }

  /** The features an account's contracts in force at `at` speak about, sorted. */
  featuresOfAccount(contracts: readonly ContractDoc[], at: Date, sources?: TermsSources): Promise<string[]> {
    return this.deps.terms.featuresOfAccount(contracts, at, sources);
  }

  /** Terms plus `used` (one counter query) and `granted` for each pair. */
  async evaluate(requests: readonly TermsRequest[], at: Date, sources?: TermsSources): Promise<EntitlementState[]> {
    return this.withFigures(await this.deps.terms.resolveWithPools(requests, at, sources), at);
  }

  async entitlements(requests: readonly TermsRequest[], at: Date, sources?: TermsSources): Promise<EntitlementView[]> {
    return (await this.evaluate(requests, at, sources)).map(viewOf);
  }

  /** Features the account draws from its ancestors' pools (R13), for Account.entitlements. */
  pooledFeaturesOf(accountId: string, at: Date, sources?: TermsSources): Promise<string[]> {
    return this.deps.terms.pooledFeaturesOf(accountId, at, sources);
  }

  /** Every entitlement an account's contracts in force give it now. */
  async accountEntitlements(accountId: string, at = new Date()): Promise<EntitlementView[]> {
    const sources = this.newSources();
    const [own, pooled] = await Promise.all([
      this.featuresOfAccount(await sources.contractsByAccount.load(accountId), at, sources),
      this.pooledFeaturesOf(accountId, at, sources),
    ]);
    const features = [...new Set([...own, ...pooled])].sort();
    return this.entitlements(
      features.map((feature) => ({ accountId, feature })),
      at,
      sources,
    );
  }

  /** One pair's entitlement now, or null when the account has no terms for it. */
  async entitlementNow(pair: TermsRequest): Promise<EntitlementView | null> {
    return (await this.entitlements([pair], new Date()))[0] ?? null;
  }

  /**
   * Decisions for many pairs. With `capacity: false` the caller promises not to use the
   * decisions' `capacity` and `remaining`: grants are then read only for pairs that go
   * beyond their included amount (where they can change the decision, as the usage
   * engine's `grantsIfNeeded`), and those two figures leave out grants elsewhere.
   */
  async check(
    requests: readonly CheckRequest[],
    at: Date,
    sources?: TermsSources,
    options: { capacity?: boolean } = {},
  ): Promise<Decision[]> {
    // Contracts and grants through their caches; counters below are always read fresh.
    const terms = await this.deps.terms.resolveWithPools(requests, at, this.deps.terms.hotSources(sources));
    const states = await this.withFigures(
      terms,
      at,
      options.capacity === false ? requests.map((request) => request.requested) : undefined,
      HOT,
    );
    const windows = await readRateWindows(this.deps.counters, requests, states, at);
    return states.map(({ terms, used, granted, accountUsed, ownUsed }, i) => {
      const requested = requests[i]!.requested;
      // R20 then R19, before the quota: the usage engine refuses in the same order.
      const ruled = ruleDecision(terms, requests[i]!, windows, at);
      if (ruled) return { ...decide(terms, used, granted, requested), ...ruled };
      // R14: decided in credits, answered in the feature's own units.
      if (terms.burn)
        return decisionInOwnUnits(decide(terms, used, granted, creditsFor(requested, terms.burn.perUnit)), terms, ownUsed ?? 0n, requested);
      const decision = decide(terms, used, granted, requested);
      // A member's cap on its draw from the pool (R13), whatever the pool's enforcement.
      const limit = terms.pool?.limit ?? null;
      if (decision.allowed && limit !== null && accountUsed + requests[i]!.requested > limit) {
        return { ...decision, allowed: false, reason: 'QUOTA_EXCEEDED' as const, overageUnits: 0n };
      }
      return decision;
    });
  }

  /**
   * One contract's own terms, as if it were the account's only contract. Usage and grants
   * are counted per account, so `used` and `granted` are the account's for the period.
   * A contract not in force (ended, not started, suspended) lists its features without access.
   */
  async contractEntitlements(contract: ContractDoc, at: Date, sources?: TermsSources): Promise<EntitlementView[]> {
    const terms = await this.deps.terms.ownTerms(contract, at, sources);
    return (await this.withFigures(terms, at)).map(viewOf);
  }

  /**
   * `used`, pool shares, burned units and `granted` for each entry. Given `requested` (in
   * the feature's own units, per entry), grants are read after the counters and only for
   * the entries whose decision they can change; the others get 0.
   */
  private async withFigures(
    terms: EffectiveTerms[],
    at: Date,
    requested?: readonly Micros[],
    grants: { cached?: boolean } = {},
  ): Promise<EntitlementState[]> {
    const counterIds = [...new Set(terms.flatMap((entry) => (entry.counterId ? [entry.counterId] : [])))];
    const draws = terms.flatMap((entry) =>
      entry.pool && entry.counterId ? [{ counterId: entry.counterId, memberId: entry.pool.memberId }] : [],
    );
    const burns = terms.flatMap((entry) =>
      entry.burn && entry.counterId ? [{ counterId: entry.counterId, feature: entry.burn.feature }] : [],
    );
    const [used, allGranted, shares, burned] = await Promise.all([
      this.deps.counters.usedByIds(counterIds),
      requested ? Promise.resolve(null) : this.deps.granted.grantedFor(terms, at, grants),
      draws.length > 0 && this.deps.counters.memberShares ? this.deps.counters.memberShares(draws) : Promise.resolve([] as Micros[]),
      burns.length > 0 && this.deps.counters.burnUsed ? this.deps.counters.burnUsed(burns) : Promise.resolve([] as Micros[]),
    ]);
    const burnedOf = new Map(burns.map((burn, i) => [`${burn.counterId}\u0000${burn.feature}`, burned[i] ?? 0n]));
    const shareOf = new Map(draws.map((draw, i) => [`${draw.counterId}\u0000${draw.memberId}`, shares[i] ?? 0n]));
    const granted = allGranted ?? (await this.grantedIfNeeded(terms, at, used, requested!, grants));
    return terms.map((entry, i) => {
      const counted = entry.counterId ? (used.get(entry.counterId) ?? 0n) : 0n;
      return {
        terms: entry,
        used: counted,
        granted: granted[i] ?? 0n,
        accountUsed: entry.pool ? (shareOf.get(`${entry.counterId}\u0000${entry.pool.memberId}`) ?? 0n) : counted,
        ...(entry.burn ? { ownUsed: burnedOf.get(`${entry.counterId}\u0000${entry.burn.feature}`) ?? 0n } : {}),
      };
    });
  }

  /** Grants for just the entries they can decide, in one read when there are any; 0 elsewhere. */
  private async grantedIfNeeded(
    terms: EffectiveTerms[],
    at: Date,
    used: ReadonlyMap<string, Micros>,
    requested: readonly Micros[],
    grants: { cached?: boolean },
  ): Promise<Micros[]> {
    const needed = terms.flatMap((entry, i) =>
      grantsMatter(entry, entry.counterId ? (used.get(entry.counterId) ?? 0n) : 0n, requested[i]!) ? [i] : [],
    );
    const result = terms.map(() => 0n);
    if (needed.length === 0) return result;
    const found = await this.deps.granted.grantedFor(
      needed.map((i) => terms[i]!),
      at,
      grants,
    );
    needed.forEach((i, j) => {
      result[i] = found[j] ?? 0n;
    });
    return result;
  }
}

/** Whether `granted` can change this entry's decision: only beyond its included amount (R4, R5). */
function grantsMatter(terms: EffectiveTerms, used: Micros, requested: Micros): boolean {
  if (!terms.hasAccess || terms.included === null || !hasQuantities(terms.featureType)) return false;
  const counted = terms.burn ? creditsFor(requested, terms.burn.perUnit) : requested;
  return used + counted > terms.included;
}

/** The entitlement view of one state; a burning feature's in its own units (R14). */
function viewOf({ terms, used, granted, accountUsed, ownUsed }: EntitlementState): EntitlementView {
  const view = buildEntitlementView(terms, used, granted, accountUsed);
  return terms.burn ? viewInOwnUnits(view, ownUsed ?? 0n) : view;
}
