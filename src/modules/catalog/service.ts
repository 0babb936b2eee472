import { isDuplicateKeyError } from '../../db/mongo.js';
import { BadInputError } from '../../shared/errors.js';
import { parseCurrency, parseMoney } from '../../shared/money.js';
import type { Actor, AuditLog } from '../audit/index.js';
import type { ResetPeriod } from '../../shared/periods.js';
import { planVersionId, type FeatureDoc, type FeatureType, type PlanVersionDoc } from './model.js';
import { assertCreditLinks } from './credits.js';
import type { CatalogRepository } from './repository.js';
import type { AddOnCatalog, AddOnInputShape, AddOnVersionDoc } from './add-ons.js';
import { parseMinimumCommit } from './minimum-commit.js';
import { parseKey, parseName, parsePlanEntitlement, parseUnit, type PlanEntitlementInputShape } from './validation.js';

export interface FeatureInputShape {
  key: string;
  name: string;
  type: FeatureType;
  unit?: string | null;
}

export interface PlanInputShape {
  key: string;
  name: string;
  currency: string;
  baseFee?: string | null;
  billingPeriod?: ResetPeriod | null;
  minimumCommit?: string | null;
  entitlements: readonly PlanEntitlementInputShape[];
}

const MAX_PLAN_ENTITLEMENTS = 500;
/** Concurrent publishers of one key race for `key@N`; the loser retries with N+1. */
const PUBLISH_ATTEMPTS = 8;

/** What other modules read of the catalog (entitlements, contracts, grants, rating). */
export type CatalogReads = Pick<
  CatalogService,
  'findFeatures' | 'findFeatureTypes' | 'findPlanVersions' | 'findPlanVersion' | 'findLatestPlanVersion'
> &
  Partial<Pick<CatalogService, 'findAddOnVersion' | 'findLatestAddOnVersion'>>;

/** Features and versioned plans (R1, R2). Every write is audited. */
export class CatalogService {
  constructor(
    private readonly repository: CatalogRepository,
    private readonly audit: AuditLog,
    /** Add-on versions (R17, add-ons.ts): their own key namespace and collection. */
    private readonly addOns?: AddOnCatalog,
  ) {}

  /**
   * Creates a feature or, when it exists with the same type, updates its name and unit.
   * Changing the type would silently change the meaning of every plan that uses it.
   */
  async defineFeature(input: FeatureInputShape, by: Actor): Promise<FeatureDoc> {
    const key = parseKey(input.key, 'key');
    const name = parseName(input.name, 'name');
    const unit = parseUnit(input.unit);
    const now = new Date();
    for (let attempt = 0; attempt < 2; attempt++) {
      const before = await this.repository.features.findOneAndUpdate(
        { _id: key, type: input.type },
        { $set: { name, unit, updatedAt: now } },
        { returnDocument: 'before' },
      );
      if (before) {
        const after: FeatureDoc = { ...before, name, unit, updatedAt: now };
        await this.recordFeature(before, after, by);
        return after;
      }
      const created: FeatureDoc = { _id: key, name, type: input.type, unit, createdAt: now, updatedAt: now };
      try {
        await this.repository.features.insertOne(created);
        await this.recordFeature(null, created, by);
        return created;
      } catch (error) {
        if (!isDuplicateKeyError(error)) throw error;
        // It exists: either with another type (refused below) or a concurrent define won.
        const existing = await this.repository.features.findOne({ _id: key });
        if (existing && existing.type !== input.type) {
          throw new BadInputError(
            `Feature "${key}" is ${existing.type}; its type cannot change to ${input.type}. Define a new feature key instead.`,
            { field: 'type' },
          );
        }
      }
    }
    throw new Error(`defineFeature("${key}") kept racing with concurrent writers`);
  }

  private recordFeature(before: FeatureDoc | null, after: FeatureDoc, by: Actor) {
    return this.audit.record({
      actor: by.actor,
      action: 'feature.defined',
      targetType: 'Feature',
      targetId: after._id,
      before,
      after,
      requestId: by.requestId,
    });
  }

  listFeatures(): Promise<FeatureDoc[]> {
    return this.repository.listFeatures();
  }

  /** Latest version when `version` is omitted; null when there is none. */
  async findPlan(key: string, version?: number | null): Promise<PlanVersionDoc | null> {
    if (version === undefined || version === null) return this.repository.findLatestPlanVersion(key);
    if (!Number.isInteger(version) || version < 1)
      throw new BadInputError(`version must be 1 or more; got ${version}.`, { field: 'version' });
    return this.repository.findPlanVersion(key, version);
  }

  /** Publishes version N+1 of a plan key; the unique `_id` makes the number race-free. */
  async publishPlan(input: PlanInputShape, by: Actor): Promise<PlanVersionDoc> {
    const draft = await this.validatePlan(input);
    for (let attempt = 0; attempt < PUBLISH_ATTEMPTS; attempt++) {
      const latest = await this.repository.findLatestPlanVersion(draft.key);
      const version = (latest?.version ?? 0) + 1;
      const doc: PlanVersionDoc = {
        ...draft,
        _id: planVersionId(draft.key, version),
        version,
        publishedAt: new Date(),
        publishedBy: by.actor,
      };
      try {
        await this.repository.insertPlanVersion(doc);
      } catch (error) {
        if (isDuplicateKeyError(error)) continue;
        throw error;
      }
      await this.audit.record({
        actor: by.actor,
        action: 'plan.published',
        targetType: 'PlanVersion',
        targetId: doc._id,
        before: latest ? { version: latest.version } : null,
        after: doc,
        requestId: by.requestId,
      });
      return doc;
    }
    throw new Error(`publishPlan("${draft.key}") lost the version race ${PUBLISH_ATTEMPTS} times`);
  }

  private async validatePlan(input: PlanInputShape): Promise<Omit<PlanVersionDoc, '_id' | 'version' | 'publishedAt' | 'publishedBy'>> {
    const key = parseKey(input.key, 'key');
    const billingPeriod = input.billingPeriod ?? 'MONTH';
    if (billingPeriod === 'NEVER') {
      throw new BadInputError('billingPeriod must be DAY, WEEK, MONTH or YEAR: a plan is billed per period.', { field: 'billingPeriod' });
    }
    if (input.entitlements.length > MAX_PLAN_ENTITLEMENTS) {
      throw new BadInputError(`A plan may hold at most ${MAX_PLAN_ENTITLEMENTS} entitlements.`, { field: 'entitlements' });
    }
    const seen = new Set<string>();
    input.entitlements.forEach((entitlement, index) => {
      parseKey(entitlement.feature, `entitlements[${index}].feature`);
      if (seen.has(entitlement.feature)) {
        throw new BadInputError(
          `Feature "${entitlement.feature}" appears twice in entitlements; a plan holds one entitlement per feature.`,
          {
            field: `entitlements[${index}].feature`,
          },
        );
      }
      seen.add(entitlement.feature);
    });
    const currency = parseCurrency(input.currency);
    const creditKeys = input.entitlements.flatMap((entitlement) => (entitlement.credits ? [entitlement.credits.feature] : []));
    const features = new Map((await this.repository.findFeatures([...seen, ...creditKeys])).map((doc) => [doc._id, doc]));
    const entitlements = input.entitlements.map((entitlement, index) => {
      const feature = features.get(entitlement.feature);
      if (!feature) {
        throw new BadInputError(
          `Unknown feature "${entitlement.feature}": define it with defineFeature before publishing a plan that uses it.`,
          {
            field: `entitlements[${index}].feature`,
          },
        );
      }
      return parsePlanEntitlement(entitlement, feature, `entitlements[${index}]`, currency);
    });
    const position = new Map(entitlements.map((terms, index) => [terms.feature, index]));
    assertCreditLinks(entitlements, features, (feature) => `entitlements[${position.get(feature)}]`);
    return {
      key,
      name: parseName(input.name, 'name'),
      currency,
      baseFee: input.baseFee == null ? null : parseMoney(input.baseFee, 'baseFee').toFixed(),
      billingPeriod,
      ...parseMinimumCommit(input.minimumCommit, currency),
      entitlements,
    };
  }

  // ---- reads other modules ask for (CatalogReads) -------------------------------------

  findFeatures(keys: readonly string[]): Promise<FeatureDoc[]> {
    return this.repository.findFeatures(keys);
  }

  findFeatureTypes(keys: readonly string[]): Promise<Map<string, FeatureType>> {
    return this.repository.findFeatureTypes(keys);
  }

  /** Keyed by planVersionId(key, version). */
  findPlanVersions(ids: readonly string[]): Promise<PlanVersionDoc[]> {
    return this.repository.findPlanVersions(ids);
  }

  findPlanVersion(key: string, version: number): Promise<PlanVersionDoc | null> {
    return this.repository.findPlanVersion(key, version);
  }

  findLatestPlanVersion(key: string): Promise<PlanVersionDoc | null> {
    return this.repository.findLatestPlanVersion(key);
  }

  // ---- add-ons (R17) --------------------------------------------------------------------

  publishAddOn(input: AddOnInputShape, by: Actor): Promise<AddOnVersionDoc> {
    return this.addOnCatalog().publish(input, by);
  }

  findAddOnVersion(key: string, version: number): Promise<AddOnVersionDoc | null> {
    return this.addOnCatalog().find(key, version);
  }

  findLatestAddOnVersion(key: string): Promise<AddOnVersionDoc | null> {
    return this.addOnCatalog().findLatest(key);
  }

  private addOnCatalog(): AddOnCatalog {
    if (!this.addOns) throw new Error('this catalog was built without add-ons');
    return this.addOns;
  }
}
