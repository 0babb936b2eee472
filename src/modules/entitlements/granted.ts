import type { Micros } from '../../shared/quantity.js';
import type { EffectiveTerms } from './model.js';

/**
 * Where `granted` comes from (R5: the part of every active grant not burned in earlier
 * periods). The grants module implements this and is passed to `EntitlementService` by the
 * composition root (src/modules/index.ts). Called once per batch of terms, so
 * an implementation should answer all of them with a bounded number of queries.
 */
export interface GrantedSource {
  /**
   * Granted micro-units for each entry's period at `at`, in the same order as `terms`.
   * `cached`: the hot path (checks, recordUsage) may read the grants cache, where a grant
   * written on another instance is seen within its bound (docs/performance.md).
   */
  grantedFor(terms: readonly EffectiveTerms[], at: Date, options?: { cached?: boolean }): Promise<Micros[]>;
}
