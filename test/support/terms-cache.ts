/** Helpers for the terms cache (docs/performance.md, "Terms cache"). */
import type { TestInstance } from './harness.js';

/** The default bound: a terms change made on another instance is seen within this. */
export const TERMS_STALENESS_MS = 500;

/** Empties the instance's terms cache (contracts and lineages), as after a restart. */
export function coldTerms(instance: TestInstance): void {
  instance.services.termsCache.clear();
  instance.services.hierarchy.forgetLineages();
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until a terms change made on one instance is seen by every other (the cache's bound, plus a margin). */
export const afterTermsBound = () => sleep(TERMS_STALENESS_MS + 50);
