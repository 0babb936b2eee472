/** Helpers for the terms cache (docs/performance.md, "Terms cache"). */
import type { TestInstance } from './harness.js';

/** The default bound: a terms change made on another instance is seen within this. */
export const TERMS_STALENESS_MS = 500;

/** Empties the instance's terms and grants caches (contracts, lineages, grants), as after a restart. */
export function coldTerms(instance: TestInstance): void {
  instance.services.termsCache.clear();
  instance.services.grantsCache.clear();
  instance.services.hierarchy.forgetLineages();
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until a terms change made on one instance is seen by every other (the cache's bound, plus a margin). */
export const afterTermsBound = () => sleep(TERMS_STALENESS_MS + 50);

/**
 * Asks `answer` every 20 ms from a change's acknowledgement until past the bound, and
 * checks what the caches promise: the new answer (`isNew`) from the bound on, and never
 * the old one again once the new one was seen.
 */
export async function expectSeenWithinBound(answer: () => Promise<unknown>, isNew: (value: unknown) => boolean): Promise<void> {
  const acknowledged = Date.now();
  const answers: Array<{ after: number; value: unknown }> = [];
  while (Date.now() - acknowledged < TERMS_STALENESS_MS + 500) {
    const sent = Date.now();
    answers.push({ after: sent - acknowledged, value: await answer() });
    await sleep(20);
  }
  const late = answers.filter((entry) => entry.after > TERMS_STALENESS_MS);
  if (late.length === 0) throw new Error('no answer came after the bound: the machine is too slow for this test');
  const stale = late.filter((entry) => !isNew(entry.value));
  if (stale.length > 0) throw new Error(`old answer ${JSON.stringify(stale[0])} after the ${TERMS_STALENESS_MS} ms bound`);
  const firstNew = answers.findIndex((entry) => isNew(entry.value));
  const relapse = answers.slice(firstNew).find((entry) => !isNew(entry.value));
  if (relapse) throw new Error(`old answer ${JSON.stringify(relapse)} after the new one was seen`);
}

/**
 * Lets the instance's feeds see every write made so far (a poll already in flight may
 * predate the last write, hence two rounds), so a first sighting of an older write cannot
 * empty an entry the next request fills: what a warm round-trip count needs.
 */
export async function feedsCaughtUp(instance: TestInstance): Promise<void> {
  for (let round = 0; round < 2; round++) {
    await Promise.all([
      instance.services.termsCache.pollOnce(),
      instance.services.grantsCache.pollOnce(),
      instance.services.hierarchy.membership.refresh(),
    ]);
  }
}
