import type { Micros } from '../../shared/quantity.js';
import type { EffectiveTerms } from './model.js';

/**
 * The port through which entitlements find pools (R13): each account's ancestors, nearest
 * first, and the caps on its draws. The hierarchy module implements it (cached per
 * hierarchy revision); src/modules/index.ts wires it.
 */
export interface PoolLineage {
  /** Whether the account may draw from a pool at all (cheap: no read), given whether it has contracts. */
  mayDraw(accountId: string, hasContracts: boolean): boolean;
  /**
   * A guess at the account's ancestors, nearest first, without a read (may be stale): their
   * contracts are loaded with the account's own, so a member's check reads contracts once.
   * The lineage itself is still read fresh.
   */
  likelyAncestors?(accountId: string): readonly string[];
  lineage(accountIds: readonly string[]): Promise<Map<string, { ancestors: string[]; limits: Record<string, Micros> }>>;
}

/** Whether an account's own terms leave it to draw from a pool: it has no entitlement of its own. */
export function drawsFromPool(terms: EffectiveTerms): boolean {
  return terms.access === 'NOT_ENTITLED' && terms.featureType !== null;
}

/**
 * The nearest pooled ancestor's terms for a member (R13), or null when none pools the
 * feature. The result is the owner's terms (its counter, capacity, thresholds), marked
 * with the draw.
 */
export function poolTermsFor(
  member: EffectiveTerms,
  lineage: { ancestors: string[]; limits: Record<string, Micros> } | undefined,
  termsOf: (accountId: string) => EffectiveTerms | undefined,
): EffectiveTerms | null {
  for (const ancestor of lineage?.ancestors ?? []) {
    const owner = termsOf(ancestor);
    if (owner?.hasAccess && owner.pooled === true) {
      return { ...owner, pool: { ownerId: ancestor, memberId: member.accountId, limit: lineage?.limits[member.feature] ?? null } };
    }
  }
  return null;
}
