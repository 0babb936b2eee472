import type { Collection, Db } from 'mongodb';
import type { CollectionIndexes } from '../../db/mongo.js';
import { planVersionId, type FeatureDoc, type FeatureType, type PlanVersionDoc } from './model.js';

export const FEATURES = 'features';
export const PLAN_VERSIONS = 'plan_versions';

/** Plan version uniqueness rides on `_id` (`key@version`); this index serves "latest of key". */
export const catalogIndexes: CollectionIndexes = {
  collection: PLAN_VERSIONS,
  indexes: [{ key: { key: 1, version: -1 }, name: 'by_key_version' }],
};

/** Largest number of immutable plan versions kept in the process-wide cache. */
const PLAN_CACHE_LIMIT = 10_000;
const FEATURE_CACHE_LIMIT = 10_000;

export class CatalogRepository {
  readonly features: Collection<FeatureDoc>;
  readonly planVersions: Collection<PlanVersionDoc>;
  /**
   * Published plan versions never change, so they are cached for the life of the process
   * (bounded, oldest evicted). Only found versions are cached: an id that is missing now
   * may be published a moment later, by this instance or another.
   */
  private readonly planCache = new Map<string, PlanVersionDoc>();
  /**
   * A feature's type never changes and features are never deleted, so a type once read
   * stays true; decisions need nothing else from the feature. Names and units, which can
   * change, are always read fresh.
   */
  private readonly featureTypeCache = new Map<string, FeatureType>();

  constructor(db: Db) {
    this.features = db.collection<FeatureDoc>(FEATURES);
    this.planVersions = db.collection<PlanVersionDoc>(PLAN_VERSIONS);
  }

  async findFeatures(keys: readonly string[]): Promise<FeatureDoc[]> {
    if (keys.length === 0) return [];
    return this.features.find({ _id: { $in: [...keys] } }).toArray();
  }

  /** Types of the given features (absent keys are not in the catalog): cached, the rest in one query. */
  async findFeatureTypes(keys: readonly string[]): Promise<Map<string, FeatureType>> {
    const types = new Map<string, FeatureType>();
    const missing: string[] = [];
    for (const key of new Set(keys)) {
      const cached = this.featureTypeCache.get(key);
      if (cached) types.set(key, cached);
      else missing.push(key);
    }
    if (missing.length > 0) {
      for (const doc of await this.features.find({ _id: { $in: missing } }, { projection: { type: 1 } }).toArray()) {
        if (this.featureTypeCache.size >= FEATURE_CACHE_LIMIT) this.featureTypeCache.clear();
        this.featureTypeCache.set(doc._id, doc.type);
        types.set(doc._id, doc.type);
      }
    }
    return types;
  }

  async listFeatures(): Promise<FeatureDoc[]> {
    return this.features.find({}).sort({ _id: 1 }).toArray();
  }

  /** Plan versions by `key@version` id: from the cache, the rest in one query. */
  async findPlanVersions(ids: readonly string[]): Promise<PlanVersionDoc[]> {
    const found: PlanVersionDoc[] = [];
    const missing: string[] = [];
    for (const id of new Set(ids)) {
      const cached = this.planCache.get(id);
      if (cached) found.push(cached);
      else missing.push(id);
    }
    if (missing.length > 0) {
      for (const doc of await this.planVersions.find({ _id: { $in: missing } }).toArray()) {
        this.remember(doc);
        found.push(doc);
      }
    }
    return found;
  }

  async findLatestPlanVersion(key: string): Promise<PlanVersionDoc | null> {
    const [latest] = await this.planVersions.find({ key }).sort({ version: -1 }).limit(1).toArray();
    if (latest) this.remember(latest);
    return latest ?? null;
  }

  async findPlanVersion(key: string, version: number): Promise<PlanVersionDoc | null> {
    const [doc] = await this.findPlanVersions([planVersionId(key, version)]);
    return doc ?? null;
  }

  /** Inserts a version; a duplicate `_id` (another publisher won the number) throws 11000. */
  async insertPlanVersion(doc: PlanVersionDoc): Promise<void> {
    await this.planVersions.insertOne(doc);
    this.remember(doc);
  }

  private remember(doc: PlanVersionDoc): void {
    if (this.planCache.size >= PLAN_CACHE_LIMIT) {
      const oldest = this.planCache.keys().next().value;
      if (oldest !== undefined) this.planCache.delete(oldest);
    }
    this.planCache.set(doc._id, doc);
  }
}
