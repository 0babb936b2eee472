import DataLoader from 'dataloader';
import type { EntitlementView } from './decision.js';
import type { EntitlementService } from './service.js';
import type { TermsRequest, TermsSources } from './terms.js';

export interface ViewRequest extends TermsRequest {
  /** Evaluate at this instant; omitted: when the batch runs (now). */
  at?: Date;
}

/**
 * Per-request loader for read paths (Account.entitlements / entitlement): pairs asked for
 * by any number of Account objects in one request are evaluated in one batch per instant.
 * Mutations that need fresh figures call the service directly instead of this cached view.
 */
export function createEntitlementLoaders(service: EntitlementService, sources: TermsSources) {
  return {
    entitlementView: new DataLoader<ViewRequest, EntitlementView, string>(
      async (requests) => {
        const now = new Date();
        const byInstant = new Map<number, number[]>();
        requests.forEach((request, i) => {
          const t = (request.at ?? now).getTime();
          byInstant.set(t, [...(byInstant.get(t) ?? []), i]);
        });
        const views = new Array<EntitlementView>(requests.length);
        await Promise.all(
          [...byInstant].map(async ([t, indexes]) => {
            const found = await service.entitlements(
              indexes.map((i) => requests[i]!),
              new Date(t),
              sources,
            );
            indexes.forEach((requestIndex, j) => {
              views[requestIndex] = found[j]!;
            });
          }),
        );
        return views;
      },
      { cacheKeyFn: ({ accountId, feature, at }) => `${accountId}\u0000${feature}\u0000${at?.toISOString() ?? 'now'}` },
    ),
  };
}
