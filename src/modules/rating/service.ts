import type DataLoader from 'dataloader';
import type { Logger } from '../../logger.js';
import type { EventPublisher } from '../../shared/events.js';
import { BadInputError, NotFoundError } from '../../shared/errors.js';
import { Money } from '../../shared/money.js';
import type { Micros } from '../../shared/quantity.js';
import type { Actor as Caller, AuditLog } from '../audit/index.js';
import { createCatalogLoaders, type FeatureDoc, type PlanVersionDoc, type CatalogReads } from '../catalog/index.js';
import { type ContractDoc, billingEnd, pinPlanId, pinsOf, planPinAt, type ContractBilling } from '../contracts/index.js';
import type { Period } from '../../shared/periods.js';
import { contractFeatures, contractTerms } from '../entitlements/index.js';
import type { CounterReader } from '../usage/index.js';
import { counterId } from '../../shared/counter-key.js';
import { addOnFeaturesIn, addOnInvoiceLines } from './add-on-fees.js';
import { periodFees } from './minimum-commit.js';
import { formatAmount } from './currency.js';
import { invoiceId, type InvoiceDoc, type InvoiceView, type PendingCorrection, type RatingEvents } from './model.js';
import { rateUsage } from './overage.js';
import { withPoolMembers } from './pool-members.js';
import { decideOwnership, governingInstant, type UsageOwnership } from './ownership.js';
import { finalizedEntry, fromOwnerDoc, fromStored } from './stored.js';
import { type PlannedUsage, type RatingPlan, ratedElsewhere } from './rating-plan.js';
import { resolveBillingPeriod, usagePeriodsRatedIn } from './periods.js';
import { rateInvoice, type UsagePeriodInput } from './rate.js';
import type { UsageOwnerRepository, InvoiceRepository } from './repository.js';
import { type GrantCoverage, type GrantCoverageSource, grantFigures, type LateUsageSource, type MarkPeriodFinal } from './sources.js';

/** Per-request loaders for the immutable catalog documents (the request's `ctx.loaders` fit). */
export interface RatingSources {
  planVersionById: DataLoader<string, PlanVersionDoc | null>;
  featureByKey: DataLoader<string, FeatureDoc | null>;
}

export interface RatingServiceDeps {
  invoices: InvoiceRepository;
  /** Who rates each usage period, recorded at the first finalisation (docs/rating.md). */
  usageOwners: UsageOwnerRepository;
  contracts: ContractBilling;
  catalog: CatalogReads;
  /** The usage module's counters: used and still-settling postings per counter. */
  counters: Pick<CounterReader, 'usedAndPending'> & Partial<Pick<CounterReader, 'sharesOf'>>;
  audit: AuditLog;
  grantCoverage: GrantCoverageSource;
  lateUsage: LateUsageSource;
  markPeriodFinal: MarkPeriodFinal;
  /** How long finalising waits for usage still being recorded in the period (a crashed write's lease, plus the sweeper). */
  settleTimeoutMs: number;
  logger: Logger;
  /** InvoiceFinalized, awaited after the snapshot and its audit entry, again on every repeat. */
  events?: EventPublisher<RatingEvents>;
}

/**
 * Invoices (R12): previews rated live from the counters and grants, finalisation that
 * freezes a period's figures once (and marks its usage periods final for R8), late usage
 * listed as pending corrections, and the billing export. Authorization is the resolvers'.
 */
export class RatingService {
  private readonly usageOwners: UsageOwnerRepository;

  constructor(private readonly deps: RatingServiceDeps) {
    this.usageOwners = deps.usageOwners;
  }

  newSources(): RatingSources {
    return createCatalogLoaders(this.deps.catalog);
  }

  /** The invoice of a billing period: the frozen snapshot once finalised, else rated now. */
  async preview(
    contract: ContractDoc,
    requested: Date | null | undefined,
    sources: RatingSources = this.newSources(),
    now = new Date(),
  ): Promise<InvoiceView> {
    // A final invoice stays readable whatever happened to the contract since (even an endsAt moved before it).
    if (requested) {
      const stored = await this.deps.invoices.findById(invoiceId(contract._id, requested));
      if (stored) return fromStored(stored);
    }
    const plan = await this.plan(contract, requested, sources, now);
    const frozen = await this.deps.invoices.findById(invoiceId(contract._id, plan.period.start));
    if (frozen) return fromStored(frozen);
    const counters = await this.deps.counters.usedAndPending(plan.usage.map((usage) => usage.counterId));
    const used = new Map([...counters].map(([id, counter]) => [id, counter.used]));
    const rated = await withPoolMembers(this.deps.counters, contract.accountId, await this.rate(plan, used));
    return { ...rated, final: false, finalizedAt: null, finalizedBy: null };
  }

  /**
   * Freezes a closed billing period's figures, once. Steps, each safe to repeat after a
   * crash (no transactions, SPEC §5):
   * 1. stamp every rated usage period's counter final, so usage landing there from now on
   *    is accepted as `late` (R8);
   * 2. read the counters once no posting is in flight on them, and take away the late
   *    postings already there: the frozen `used` is exactly the usage that was not late,
   *    however finalisations and late events interleave;
   * 3. insert the snapshot under its unique id: the first writer wins and everyone,
   *    including a retry, gets that snapshot back;
   * 4. audit `invoice.finalized` under an id derived from the invoice, so a retry after a
   *    crash restores a missing entry and never duplicates it.
   */
  async finalize(contractId: string, requested: Date, caller: Caller, now = new Date()): Promise<InvoiceView> {
    const [contract] = await this.deps.contracts.findByIds([contractId]);
    if (!contract) throw new NotFoundError(`Contract "${contractId}" does not exist; create it with upsertContract.`);
    const stored = await this.deps.invoices.findById(invoiceId(contract._id, requested));
    if (stored) return this.repeatFinalize(stored, caller);
    let plan = await this.plan(contract, requested, this.newSources(), now);
    if (plan.period.end.getTime() > now.getTime()) {
      throw new BadInputError(
        `The billing period ${plan.period.start.toISOString()} to ${plan.period.end.toISOString()} has not ended yet; finalise it once it has (invoicePreview shows it meanwhile).`,
        { field: 'periodStart' },
      );
    }
    const id = invoiceId(contract._id, plan.period.start);
    const existing = await this.deps.invoices.findById(id);
    if (existing) return this.repeatFinalize(existing, caller);
    // From here on the contract refuses plan changes dated inside this period; one that
    // landed before is in the contract read back, and rated.
    const closed = await this.deps.contracts.closeBillingThrough(contract._id, plan.period.end);
    plan = await this.plan(closed, requested, this.newSources(), now);
    if (await this.recordOwners(plan, id, now)) plan = await this.plan(closed, requested, this.newSources(), now);

    await Promise.all(
      plan.usage.map((usage) =>
        this.deps.markPeriodFinal(
          {
            counterId: usage.counterId,
            accountId: contract.accountId,
            feature: usage.feature._id,
            periodStart: usage.period.start,
            periodEnd: usage.period.end,
          },
          now,
        ),
      ),
    );
    // The pool's per-member quantities are frozen with the rest (R13).
    const rated = await withPoolMembers(this.deps.counters, contract.accountId, await this.rate(plan, await this.settledUsage(plan)));
    const doc: InvoiceDoc = {
      ...rated,
      _id: id,
      final: true,
      finalizedAt: new Date(),
      finalizedBy: caller.actor,
      requestId: caller.requestId,
    };
    if (!(await this.deps.invoices.insert(doc))) {
      const winner = await this.deps.invoices.findById(id);
      if (!winner) throw new Error(`invoice ${id} collided on insert but cannot be read back`);
      return this.repeatFinalize(winner, caller);
    }
    await this.deps.audit.recordMany([finalizedEntry(doc)], { replay: true });
    await this.deps.events?.publish('InvoiceFinalized', { invoiceId: doc._id, ...fromStored(doc) });
    this.deps.logger.info({ invoiceId: id, total: doc.total, amountDue: doc.amountDue, currency: doc.currency }, 'invoice finalized');
    return doc;
  }

  /**
   * Late usage (R8) in the usage periods of a finalised invoice, and what re-rating it
   * would add: each usage period is rated again with its frozen terms (included amount,
   * price) and its usage and grant burn as they are now, less what was frozen.
   */
  async pendingCorrections(invoice: InvoiceView, now = new Date()): Promise<PendingCorrection[]> {
    if (!invoice.final || invoice.usage.length === 0) return [];
    const ids = invoice.usage.map((usage) => usage.counterId);
    const [counters, late] = await Promise.all([this.deps.counters.usedAndPending(ids), this.deps.lateUsage(ids)]);
    const corrections: PendingCorrection[] = [];
    for (const usage of invoice.usage) {
      const usedNow = counters.get(usage.counterId)?.used ?? usage.used;
      const postings = late.filter((posting) => posting.counterId === usage.counterId);
      if (usedNow === usage.used && postings.length === 0) continue;
      const period = { start: usage.periodStart, end: usage.periodEnd };
      const coverage = await this.coverage(invoice.accountId, usage.feature, period, governingInstant(period, null, now));
      const terms = { included: usage.included, price: usage.price };
      const frozen = rateUsage(terms, usage.used, usage.grantBurn);
      const rerated = rateUsage(terms, usedNow, coverage.burn);
      corrections.push({
        feature: usage.feature,
        counterId: usage.counterId,
        periodStart: usage.periodStart,
        periodEnd: usage.periodEnd,
        usedAtFinalization: usage.used,
        usedNow,
        lateUnits: usedNow - usage.used,
        lateEvents: postings.reduce((sum, posting) => sum + posting.events, 0),
        overageUnits: rerated.overage - frozen.overage,
        amount: formatAmount(rerated.amount.minus(new Money(usage.amount)), invoice.currency),
      });
    }
    return corrections;
  }

  // ---- planning -----------------------------------------------------------------------------

  private async plan(contract: ContractDoc, requested: Date | null | undefined, sources: RatingSources, now: Date): Promise<RatingPlan> {
    const plans = await this.loadPlans([contract], sources);
    const planAt = (at: Date) => plans.get(pinPlanId(planPinAt(contract, at)))!;
    // Billing stops at endsAt or at the cancellation, whichever is first (docs/rating.md).
    const life = billingEnd(contract);
    const billed: ContractDoc = { ...contract, endsAt: life };
    const period = resolveBillingPeriod(billed, (at) => planAt(at).billingPeriod, requested, now);
    const lastInstant = governingInstant(period, life, now);
    const currency = planAt(lastInstant).currency;
    const { baseFees, minimumCommits } = periodFees(contract, plans, period, currency);
    // The features any pin in force during the period speaks about, metered ones rated.
    const pins = pinsOf(contract);
    const inPeriod = pins.filter((pin, i) => {
      const next = pins[i + 1];
      return pin.effectiveAt < period.end && (!next || next.effectiveAt > period.start);
    });
    const pinFeatures = inPeriod.flatMap((pin) => contractFeatures(contract, plans.get(pinPlanId(pin))));
    const keys = [...new Set([...pinFeatures, ...addOnFeaturesIn(contract, period)])].sort();
    const features = (await sources.featureByKey.loadMany(keys)).filter(
      (doc): doc is FeatureDoc => !(doc instanceof Error) && doc !== null && doc.type === 'METERED',
    );
    // This contract's usage periods rated in the billing period (its anchor, its cadence).
    const candidates: Array<{ feature: FeatureDoc; period: Period; counterId: string }> = [];
    for (const feature of features) {
      const termsAt = (at: Date) => contractTerms(contract, planAt(at), feature._id, at);
      const cadence =
        termsAt(lastInstant) ??
        [...inPeriod]
          .reverse()
          .map((pin) => contractTerms(contract, plans.get(pinPlanId(pin)), feature._id))
          .find(Boolean);
      if (!cadence || cadence.credits) continue; // R14: a burning feature's usage is rated on its credit feature
      for (const usagePeriod of usagePeriodsRatedIn(contract.billingAnchor, cadence.resetPeriod, period, life)) {
        if (usagePeriod.start.getTime() > now.getTime()) continue;
        candidates.push({ feature, period: usagePeriod, counterId: counterId(contract.accountId, feature._id, usagePeriod.start) });
      }
    }
    const owners = await this.owners(contract, candidates, sources, now);
    const usage: PlannedUsage[] = [];
    for (const candidate of candidates) {
      const owner = owners.get(candidate.counterId);
      // Rated once, on its owner's invoice (ownership.ts); the other contracts leave it out.
      if (!owner || owner.ownerId !== contract._id) continue;
      usage.push({ ...candidate, at: owner.at, terms: { included: owner.included, price: owner.overage }, owner });
    }
    return { contract, period, currency, baseFees, minimumCommits, usage, candidates, owners };
  }

  /**
   * The owner and terms of each candidate usage period: the record made when an invoice
   * covering it was finalised, else decided now from the account's contracts (ownership.ts).
   */
  private async owners(
    contract: ContractDoc,
    candidates: ReadonlyArray<{ feature: FeatureDoc; period: Period; counterId: string }>,
    sources: RatingSources,
    now: Date,
  ): Promise<Map<string, UsageOwnership & { recorded: boolean }>> {
    const found = new Map<string, UsageOwnership & { recorded: boolean }>();
    if (candidates.length === 0) return found;
    const recorded = await this.usageOwners.findByCounterIds(candidates.map((candidate) => candidate.counterId));
    const open = candidates.filter((candidate) => !recorded.has(candidate.counterId));
    for (const [id, doc] of recorded) found.set(id, { ...fromOwnerDoc(doc), recorded: true });
    if (open.length === 0) return found;
    const contracts = await this.deps.contracts.findByAccountIds([contract.accountId]);
    const plans = await this.loadPlans(contracts, sources);
    for (const { feature, period, counterId: id } of open) {
      const decided = decideOwnership({ accountId: contract.accountId, feature: feature._id, period, contracts, plans, now });
      if (decided) found.set(id, { ...decided, recorded: false });
    }
    return found;
  }

  /** Every plan version the pins of these contracts name. */
  private async loadPlans(contracts: readonly ContractDoc[], sources: RatingSources): Promise<Map<string, PlanVersionDoc>> {
    const ids = [...new Set(contracts.flatMap((contract) => pinsOf(contract).map(pinPlanId)))];
    const plans = new Map<string, PlanVersionDoc>();
    for (const [i, doc] of (await sources.planVersionById.loadMany(ids)).entries()) {
      if (doc instanceof Error) throw doc;
      if (!doc) throw new Error(`a contract of the account is pinned to missing plan version ${ids[i]}`);
      plans.set(doc._id, doc);
    }
    return plans;
  }

  /**
   * Records the owner of every usage period this invoice covers and that has no record
   * yet, the ones other contracts own included, before the invoice is frozen: from now on
   * no change to any contract moves them or their terms. A record that stands already (a
   * concurrent finalisation) wins, and the plan is redone with it.
   */
  private async recordOwners(plan: RatingPlan, invoice: string, now: Date): Promise<boolean> {
    let changed = false;
    for (const candidate of plan.candidates) {
      const owner = plan.owners.get(candidate.counterId);
      if (!owner || owner.recorded) continue;
      const { recorded: _recorded, ...decision } = owner;
      const stands = await this.usageOwners.record({
        ...decision,
        _id: decision.counterId,
        accountId: plan.contract.accountId,
        recordedAt: now,
        recordedBy: invoice,
      });
      if (stands.recordedBy !== invoice) changed = true;
    }
    return changed;
  }

  private async rate(
    plan: RatingPlan,
    used: ReadonlyMap<string, Micros>,
  ): Promise<Omit<InvoiceView, 'final' | 'finalizedAt' | 'finalizedBy'>> {
    const { contract, period, currency } = plan;
    const inputs = await Promise.all(
      plan.usage.map(async (usage): Promise<UsagePeriodInput> => {
        const coverage = await this.coverage(contract.accountId, usage.feature._id, usage.period, usage.at);
        return {
          feature: usage.feature._id,
          featureName: usage.feature.name,
          unit: usage.feature.unit,
          counterId: usage.counterId,
          period: usage.period,
          terms: usage.terms,
          used: used.get(usage.counterId) ?? 0n,
          ...grantFigures(coverage),
        };
      }),
    );
    // A feature this invoice rates none of, because another contract owns its usage: a zero line says where it is.
    const rated = rateInvoice({
      ...plan, // currency, period, base fees and minimum commits
      contractId: contract._id,
      addOnLines: addOnInvoiceLines(contract, period, currency),
      usage: inputs,
      ratedElsewhere: ratedElsewhere(plan),
    });
    return {
      contractId: contract._id,
      accountId: contract.accountId,
      periodStart: period.start,
      periodEnd: period.end,
      currency,
      ...rated,
    };
  }

  /** The grants' part (R5; R14 top-ups), or none when the grants module has no period there. */
  private async coverage(accountId: string, feature: string, period: Period, at: Date): Promise<GrantCoverage> {
    try {
      return await this.deps.grantCoverage({ accountId, feature, period, at });
    } catch (error) {
      if (error instanceof BadInputError) return { granted: 0n, burn: [] };
      throw error;
    }
  }

  // ---- finalising ---------------------------------------------------------------------------
  /**
   * `used` of each counter without its late postings, read when nothing is in flight: two
   * reads around the late-postings read that agree, with no pending entry, mean every
   * increment in `used` belongs to a posting that is settled (and flagged late or not).
   */
  private async settledUsage(plan: RatingPlan): Promise<Map<string, Micros>> {
    const ids = plan.usage.map((usage) => usage.counterId);
    const deadline = Date.now() + this.deps.settleTimeoutMs;
    for (let delay = 5; ; delay = Math.min(delay * 2, 200)) {
      const before = await this.deps.counters.usedAndPending(ids);
      const late = await this.deps.lateUsage(ids);
      const after = await this.deps.counters.usedAndPending(ids);
      const settled = ids.every((id) => (before.get(id)?.pending ?? 0) === 0 && before.get(id)?.used === after.get(id)?.used);
      if (settled) {
        const used = new Map(ids.map((id) => [id, before.get(id)?.used ?? 0n]));
        for (const posting of late) used.set(posting.counterId, (used.get(posting.counterId) ?? 0n) - posting.units);
        return used;
      }
      if (Date.now() > deadline) {
        throw new Error(
          `usage of contract ${plan.contract._id} for ${plan.period.start.toISOString()} is still being recorded; finalizeInvoice can be retried`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }

  private async repeatFinalize(existing: InvoiceDoc, caller: Caller): Promise<InvoiceView> {
    // Restores the finalisation entry, and the event, if the first finalizer died before them.
    await this.deps.audit.recordMany([finalizedEntry(existing)], { replay: true });
    await this.deps.events?.publish('InvoiceFinalized', { invoiceId: existing._id, ...fromStored(existing) });
    await this.deps.audit.record({
      actor: caller.actor,
      requestId: caller.requestId,
      action: 'invoice.finalize_repeated',
      targetType: 'Invoice',
      targetId: existing._id,
      accountId: existing.accountId,
      before: null,
      after: { finalizedAt: existing.finalizedAt, finalizedBy: existing.finalizedBy, total: existing.total, amountDue: existing.amountDue },
    });
    return fromStored(existing);
  }
}
