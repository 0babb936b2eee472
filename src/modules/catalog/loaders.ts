import DataLoader from 'dataloader';
import type { FeatureDoc, PlanVersionDoc } from './model.js';
import type { CatalogReads } from './service.js';

/** Per-request loaders: features and plan versions referenced anywhere in a request load once. */
export function createCatalogLoaders(catalog: CatalogReads) {
  return {
    featureByKey: new DataLoader<string, FeatureDoc | null>(async (keys) => {
      const found = new Map((await catalog.findFeatures(keys)).map((doc) => [doc._id, doc]));
      return keys.map((key) => found.get(key) ?? null);
    }),
    /** Keyed by `key@version`. */
    planVersionById: new DataLoader<string, PlanVersionDoc | null>(async (ids) => {
      const found = new Map((await catalog.findPlanVersions(ids)).map((doc) => [doc._id, doc]));
      return ids.map((id) => found.get(id) ?? null);
    }),
  };
}

export type CatalogLoaders = ReturnType<typeof createCatalogLoaders>;
