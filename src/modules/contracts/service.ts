import { isDuplicateKeyError } from '../../db/mongo.js';
import { BadInputError, NotFoundError } from '../../shared/errors.js';
import type { Logger } from '../../logger.js';
import type { EventPublisher } from '../../shared/events.js';
import type { Actor, AuditLog } from '../audit/index.js';
import {
  assertOverageCurrency,
  type CatalogReads,
  parseKey,
  parseOverride,
  planVersionId,
  type OverrideInputShape,
} from '../catalog/index.js';
import type { ContractDoc, ContractStatus, EntitlementOverride } from './model.js';
import { pinPlanId, pinsOf, windowsOverlap, withPins, withStatus } from './plan-history.js';
import { type ContractInputShape, parseExternalId } from './validation.js';
import { contractsNow, trialFields } from './trials.js';
import { compareAndSet } from './compare-and-set.js';
import { resolvePlan } from './resolve-plan.js';

export type { ContractInputShape } from './validation.js';
import type { ContractRepository } from './repository.js';
import { assertOverrideCredits } from './credits.js';

const MAX_PINS = 1_000;
const WRITE_ATTEMPTS = 8;

export interface ContractServiceDeps {
  repository: ContractRepository;
  catalog: CatalogReads;
  audit: AuditLog;
  /** Publishes TermsChanged after every stored write. */
  events: EventPublisher<ContractEvents>;
  logger: Logger;
  /** R18: a read saw a trial end due or not yet announced (TrialSettler.due). */
  trialDue?: (contractId: string) => void;
}

/** What other modules read of the contracts. */
export type ContractReads = Pick<ContractService, 'findByIds' | 'findByAccountIds'>;

/** The hot path's reads of the contracts, through the terms cache. */
export type ContractTermsReads = Pick<ContractService, 'termsByAccountIds'>;

/** What rating asks of the contracts when it finalises an invoice. */
export type ContractBilling = ContractReads & Pick<ContractService, 'closeBillingThrough'>;

/** Events the contracts module publishes. */
export interface ContractEvents {
  /** A contract write changed an account's terms now (plan, override, status, dates). */
  TermsChanged: { accountId: string; contractId: string };
}

/**
 * Contract writes (R3). Each is a compare-and-set on `revision`: read, validate and build
 * the next document, then replace it only if nobody wrote in between (else retry). One
 * document per write keeps this correct without transactions, on every store.
 */
export class ContractService {
  private readonly repository: ContractRepository;
  private readonly catalog: CatalogReads;

  constructor(private readonly deps: ContractServiceDeps) {
    this.repository = deps.repository;
    this.catalog = deps.catalog;
  }

  private asNow = (docs: ContractDoc[]) => contractsNow(docs, new Date(), this.deps.trialDue);

  // ---- reads other modules ask for (ContractReads) ----------------------------------------

  /** One `find` for any number of ids (DataLoader batches into this). */
  async findByIds(ids: readonly string[]): Promise<ContractDoc[]> {
    return this.asNow(await this.repository.findByIds(ids));
  }

  /** The contracts of any number of accounts, oldest first; concurrent requests share one query. */
  async findByAccountIds(accountIds: readonly string[]): Promise<ContractDoc[]> {
    return this.asNow(await this.repository.findByAccountIds(accountIds));
  }

  /**
   * The same, through the terms cache (the hot path: checks and recordUsage); a change made
   * on another instance is seen within the cache's staleness bound (terms-cache.ts).
   */
  async termsByAccountIds(accountIds: readonly string[]): Promise<ContractDoc[]> {
    return this.asNow(await this.repository.findTermsByAccountIds(accountIds));
  }

  /** The stored contract as it stands now (R18); a write stores the trial's end with it. */
  private async load(id: string): Promise<ContractDoc | null> {
    const doc = await this.repository.collection.findOne({ _id: id });
    return doc && this.asNow([doc])[0]!;
  }

  // ---- writes (R3) -----------------------------------------------------------------------

  /**
   * Rating is about to freeze an invoice ending at `periodEnd`: from now on the plan history
   * cannot change before it (a final invoice keeps the terms it was rated with). A
   * compare-and-set like every contract write, so a racing plan change either lands first,
   * and is rated, or sees this and is refused. Recorded as part of `finalizeInvoice`, which
   * rating audits; terms do not change, so nothing is announced.
   */
  async closeBillingThrough(contractId: string, periodEnd: Date): Promise<ContractDoc> {
    for (let attempt = 0; attempt < WRITE_ATTEMPTS; attempt++) {
      const existing = await this.load(contractId);
      if (!existing) throw new NotFoundError(`Contract "${contractId}" does not exist; create it with upsertContract.`);
      if (existing.finalizedThrough && existing.finalizedThrough.getTime() >= periodEnd.getTime()) return existing;
      const written = await this.compareAndSet(existing, { ...existing, finalizedThrough: periodEnd });
      if (written) return written;
    }
    throw new Error(`closing billing of "${contractId}" kept racing with concurrent writers`);
  }

  /**
   * Creates or updates a contract as the billing system sends it. On an existing contract,
   * an omitted `planVersion` keeps the pinned version (grandfathering, R2) rather than
   * jumping to the latest; a different plan or version is appended to the plan history,
   * effective now (or at `startsAt`, for a contract that has not started).
   */
  async upsertContract(input: ContractInputShape, by: Actor): Promise<ContractDoc> {
    const id = parseExternalId(input.id, 'id');
    const accountId = parseExternalId(input.accountId, 'accountId');
    const planKey = parseKey(input.planKey, 'planKey');
    const startsAt = input.startsAt;
    const endsAt = input.endsAt ?? null;
    if (endsAt && endsAt.getTime() <= startsAt.getTime()) {
      throw new BadInputError(`endsAt (${endsAt.toISOString()}) must be after startsAt (${startsAt.toISOString()}).`, { field: 'endsAt' });
    }
    const billingAnchor = input.billingAnchor ?? startsAt;

    for (let attempt = 0; attempt < WRITE_ATTEMPTS; attempt++) {
      const existing = await this.load(id);
      if (existing && existing.accountId !== accountId) {
        throw new BadInputError(`Contract "${id}" belongs to account "${existing.accountId}"; a contract cannot move to another account.`, {
          field: 'accountId',
        });
      }
      const { status, ...trial } = trialFields({ ...input, startsAt, endsAt }, existing, new Date());
      const keepPinned = existing && existing.planKey === planKey && input.planVersion == null;
      const plan = await resolvePlan(this.catalog, planKey, keepPinned ? existing.planVersion : input.planVersion);
      await this.assertCurrencyCompatible({ _id: id, accountId, startsAt, endsAt, status }, plan.currency);
      const now = new Date();

      if (!existing) {
        const created: ContractDoc = {
          _id: id,
          accountId,
          planKey: plan.key,
          planVersion: plan.version,
          planHistory: [{ planKey: plan.key, planVersion: plan.version, effectiveAt: startsAt }],
          status,
          // The status a contract is created with applies from its start (docs/rating.md).
          statusHistory: [{ status, at: startsAt }],
          canceledAt: status === 'CANCELED' ? startsAt : null,
          startsAt,
          endsAt,
          billingAnchor,
          ...trial,
          overrides: {},
          revision: 1,
          createdAt: now,
          updatedAt: now,
        };
        try {
          await this.repository.collection.insertOne(created);
        } catch (error) {
          if (isDuplicateKeyError(error)) continue; // created concurrently: update it instead
          throw error;
        } finally {
          this.repository.touched([accountId]);
        }
        await this.record('contract.upserted', null, created, by);
        return this.asNow([created])[0]!;
      }

      if (existing.billingAnchor.getTime() !== billingAnchor.getTime()) {
        const finalized = existing.finalizedThrough ?? null;
        if (finalized) {
          throw new BadInputError(
            `billingAnchor cannot move from ${existing.billingAnchor.toISOString()} to ${billingAnchor.toISOString()}: contract "${id}" has final invoices (through ${finalized.toISOString()}), and new periods would overlap them. Keep the anchor, or start a new contract.`,
            { field: 'billingAnchor' },
          );
        }
      }
      const pins = pinsOf(existing).map((pin, index) => (index === 0 ? { ...pin, effectiveAt: startsAt } : pin));
      const firstChange = pins[1];
      if (firstChange && firstChange.effectiveAt.getTime() < startsAt.getTime()) {
        throw new BadInputError(
          `startsAt (${startsAt.toISOString()}) cannot move past the plan change of ${firstChange.effectiveAt.toISOString()}; plan history must stay in order.`,
          { field: 'startsAt' },
        );
      }
      const last = pins.at(-1)!;
      if (last.planKey !== plan.key || last.planVersion !== plan.version) {
        const effectiveAt = new Date(Math.max(now.getTime(), startsAt.getTime(), last.effectiveAt.getTime()));
        pins.push({ planKey: plan.key, planVersion: plan.version, effectiveAt });
      }
      const next: ContractDoc = { ...withStatus(existing, status, now), ...withPins(pins), startsAt, endsAt, billingAnchor, ...trial };
      const written = await this.compareAndSet(existing, next);
      if (!written) continue;
      await this.record('contract.upserted', existing, written, by);
      return written;
    }
    throw new Error(`upsertContract("${id}") kept racing with concurrent writers`);
  }

  /** Moves a contract to another plan version from `effectiveAt` on (default: now). */
  async changePlan(
    args: { contractId: string; planKey: string; version?: number | null; effectiveAt?: Date | null },
    by: Actor,
  ): Promise<ContractDoc> {
    const planKey = parseKey(args.planKey, 'planKey');
    const plan = await resolvePlan(this.catalog, planKey, args.version);
    return this.mutate(args.contractId, 'contract.plan_changed', by, async (contract) => {
      const effectiveAt = args.effectiveAt ?? new Date();
      const pins = pinsOf(contract);
      const last = pins.at(-1)!;
      if (effectiveAt.getTime() < contract.startsAt.getTime()) {
        throw new BadInputError(
          `effectiveAt (${effectiveAt.toISOString()}) is before the contract starts (${contract.startsAt.toISOString()}).`,
          { field: 'effectiveAt' },
        );
      }
      if (contract.endsAt && effectiveAt.getTime() >= contract.endsAt.getTime()) {
        throw new BadInputError(
          `effectiveAt (${effectiveAt.toISOString()}) is not before the contract ends (${contract.endsAt.toISOString()}).`,
          { field: 'effectiveAt' },
        );
      }
      const finalized = contract.finalizedThrough ?? null;
      if (finalized && effectiveAt.getTime() < finalized.getTime()) {
        throw new BadInputError(
          `effectiveAt (${effectiveAt.toISOString()}) falls in a billing period whose invoice is final (finalised through ${finalized.toISOString()}); a final invoice keeps the terms it was rated with. Use an effectiveAt of ${finalized.toISOString()} or later.`,
          { field: 'effectiveAt' },
        );
      }
      if (effectiveAt.getTime() < last.effectiveAt.getTime()) {
        throw new BadInputError(
          `effectiveAt (${effectiveAt.toISOString()}) is before the last plan change (${last.effectiveAt.toISOString()}); plan history only moves forward.`,
          { field: 'effectiveAt' },
        );
      }
      const current = await this.catalog.findPlanVersion(contract.planKey, contract.planVersion);
      if (current && current.currency !== plan.currency) {
        throw new BadInputError(
          `Plan ${plan.key}@${plan.version} is billed in ${plan.currency} but contract "${contract._id}" is in ${current.currency}; a contract keeps one currency. Start a new contract instead.`,
          { field: 'planKey' },
        );
      }
      if (pins.length >= MAX_PINS) throw new BadInputError(`Contract "${contract._id}" already has ${MAX_PINS} plan changes.`);
      const samePlan = last.planKey === plan.key && last.planVersion === plan.version;
      return samePlan ? contract : { ...contract, ...withPins([...pins, { planKey: plan.key, planVersion: plan.version, effectiveAt }]) };
    });
  }

  /** Replaces the given entitlement fields for one feature of one contract; others stay. */
  async setOverride(contractId: string, input: OverrideInputShape, by: Actor): Promise<ContractDoc> {
    const featureKey = parseKey(input.feature, 'input.feature');
    const [feature] = await this.catalog.findFeatures([featureKey]);
    if (!feature)
      throw new BadInputError(`Unknown feature "${featureKey}": define it with defineFeature first.`, { field: 'input.feature' });
    const change = parseOverride(input, feature);
    return this.mutate(contractId, 'contract.override_set', by, async (contract) => {
      // A contract keeps one currency: tier flat fees must be payable in it (R15).
      const plan = change.overage ? await this.catalog.findPlanVersion(contract.planKey, contract.planVersion) : null;
      if (plan) assertOverageCurrency(change.overage, plan.currency, 'input.overage');
      const merged: EntitlementOverride = { ...contract.overrides?.[featureKey], ...change };
      const next = { ...contract, overrides: { ...contract.overrides, [featureKey]: merged } };
      if (change.credits) await assertOverrideCredits(this.catalog, next, featureKey);
      return next;
    });
  }

  /** Removes every override of one feature, so the plan's terms apply again. */
  async clearOverride(contractId: string, feature: string, by: Actor): Promise<ContractDoc> {
    const featureKey = parseKey(feature, 'feature');
    return this.mutate(contractId, 'contract.override_set', by, async (contract) => {
      const { [featureKey]: _removed, ...rest } = contract.overrides ?? {};
      return { ...contract, overrides: rest };
    });
  }

  async setStatus(contractId: string, status: ContractStatus, by: Actor): Promise<ContractDoc> {
    return this.mutate(contractId, 'contract.status_set', by, async (contract) => {
      if (contract.status === 'CANCELED' && status !== 'CANCELED') {
        // Reviving a contract brings its currency back into the account's merge.
        const plan = await this.catalog.findPlanVersion(contract.planKey, contract.planVersion);
        if (plan) await this.assertCurrencyCompatible({ ...contract, status }, plan.currency);
      }
      return withStatus(contract, status, new Date());
    });
  }

  private async mutate(
    contractId: string,
    action: 'contract.plan_changed' | 'contract.override_set' | 'contract.status_set',
    by: Actor,
    change: (contract: ContractDoc) => Promise<ContractDoc>,
  ): Promise<ContractDoc> {
    for (let attempt = 0; attempt < WRITE_ATTEMPTS; attempt++) {
      const existing = await this.load(contractId);
      if (!existing) throw new NotFoundError(`Contract "${contractId}" does not exist; create it with upsertContract.`);
      const next = await change(existing);
      const written = await this.compareAndSet(existing, next);
      if (!written) continue;
      await this.record(action, existing, written, by, overrideTarget(action, existing, written));
      return written;
    }
    throw new Error(`${action} on "${contractId}" kept racing with concurrent writers`);
  }

  /** Replaces the document only if its revision is still the one read; null when it moved. */
  private compareAndSet(existing: ContractDoc, next: ContractDoc): Promise<ContractDoc | null> {
    return compareAndSet(this.repository, existing, next);
  }

  /**
   * Contracts of one account that overlap in time are merged (R4), so they must bill in one
   * currency. Canceled contracts no longer take part.
   */
  private async assertCurrencyCompatible(
    contract: Pick<ContractDoc, '_id' | 'accountId' | 'startsAt' | 'endsAt' | 'status'>,
    currency: string,
  ): Promise<void> {
    if (contract.status === 'CANCELED') return;
    const others = (await this.repository.findByAccountIds([contract.accountId])).filter(
      (other) => other._id !== contract._id && other.status !== 'CANCELED' && windowsOverlap(other, contract),
    );
    if (others.length === 0) return;
    const plans = new Map(
      (await this.catalog.findPlanVersions(others.map((other) => planVersionId(other.planKey, other.planVersion)))).map((p) => [p._id, p]),
    );
    for (const other of others) {
      const otherCurrency = plans.get(pinPlanId(pinsOf(other).at(-1)!))?.currency;
      if (otherCurrency && otherCurrency !== currency) {
        throw new BadInputError(
          `Currency mismatch: contract "${other._id}" of account "${contract.accountId}" overlaps this one and bills in ${otherCurrency}, but this plan bills in ${currency}. Use a ${otherCurrency} plan, or end or cancel "${other._id}" first.`,
          { field: 'planKey' },
        );
      }
    }
  }

  /**
   * Every stored write is audited (R10), then announced: TermsChanged lets thresholds be
   * re-evaluated and live balances pushed (R3, R9). The write is durable by then, so a
   * failed reaction is logged, not thrown: the next counter change evaluates the new terms.
   */
  private async record(
    action: string,
    before: ContractDoc | null,
    after: ContractDoc,
    by: Actor,
    target?: { before: unknown; after: unknown },
  ) {
    await this.writeAudit(action, before, after, by, target);
    if (after.trialEnd?.announced === false) this.deps.trialDue?.(after._id); // this write stored a trial's end (R18)
    await this.deps.events
      .publish('TermsChanged', { accountId: after.accountId, contractId: after._id })
      .catch((error: unknown) =>
        this.deps.logger.warn(
          { err: error, accountId: after.accountId, action },
          'could not re-evaluate thresholds after a contract write',
        ),
      );
  }

  private async writeAudit(
    action: string,
    before: ContractDoc | null,
    after: ContractDoc,
    by: Actor,
    target?: { before: unknown; after: unknown },
  ) {
    await this.deps.audit.record({
      actor: by.actor,
      action,
      targetType: 'Contract',
      targetId: after._id,
      accountId: after.accountId,
      before: target ? target.before : before,
      after: target ? target.after : after,
      requestId: by.requestId,
    });
  }
}

/** Override entries record only the overrides, not the whole contract, so a dispute reads directly. */
function overrideTarget(action: string, before: ContractDoc, after: ContractDoc): { before: unknown; after: unknown } | undefined {
  if (action !== 'contract.override_set') return undefined;
  return { before: { overrides: before.overrides ?? {} }, after: { overrides: after.overrides ?? {} } };
}
