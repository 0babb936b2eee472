import type { GrantService } from '../grants/index.js';
import type { GrantCoverageSource } from './sources.js';

/**
 * The grants module's contribution to an invoice, through its public `explain`: the burn
 * of one usage period recomputed from the counters' hour buckets and the grants (R5), so
 * an invoice's credits are the same figures support sees in Account.grantBurn.
 * - granted: what each grant overlapping the period had left when the period (or the
 *   grant) began;
 * - burn: the units each grant covered in the period.
 */
export function grantCoverageFrom(grants: Pick<GrantService, 'explain'>): GrantCoverageSource {
  return async ({ accountId, feature, period, at }) => {
    const explanation = await grants.explain({ accountId, feature }, at);
    // The grants module names the period from the account's merged terms; if that is not
    // the usage period being rated (overlapping contracts on other anchors), it has no burn here.
    if (explanation.period.start.getTime() !== period.start.getTime()) return { granted: 0n, burn: [] };
    return {
      granted: explanation.grants.reduce((sum, entry) => sum + entry.availableAtStart, 0n),
      burn: explanation.grants
        .filter((entry) => entry.burned > 0n)
        .map((entry) => ({
          grantId: entry.grant.doc._id,
          kind: entry.grant.doc.kind,
          reason: entry.grant.doc.reason,
          units: entry.burned,
        })),
      topUps: explanation.grants.flatMap(({ grant: { doc } }) =>
        doc.price && doc.issuedAt >= period.start && (period.end === null || doc.issuedAt < period.end)
          ? [{ grantId: doc._id, amount: doc.amount, price: doc.price, issuedAt: doc.issuedAt }]
          : [],
      ),
    };
  };
}
