import type { Resolvers } from '../../generated/graphql.js';
import { authorize } from '../../shared/scopes.js';
import { formatQuantity } from '../../shared/quantity.js';

/** Thin: authorize, hand over to GrantService, format micro-units as decimals. */
export const grantResolvers: Resolvers = {
  Mutation: {
    issueGrant(_root, { input }, { principal, requestId, services }) {
      // grants:write is an internal scope: customer tokens are refused even if they claim it.
      authorize(principal, 'grants:write', input.accountId);
      return services.grants.issue(input, { actor: principal.actor, requestId });
    },
    voidGrant(_root, { id, reason }, { principal, requestId, services }) {
      authorize(principal, 'grants:write');
      return services.grants.void(id, reason, { actor: principal.actor, requestId });
    },
  },
  Account: {
    // The Account was authorized (entitlements:read + account) where it entered the graph.
    grants: (account, { feature, activeOnly }, { loaders }) =>
      loaders.grantListing.load({ accountId: account.id, feature: feature ?? null, activeOnly: activeOnly ?? true }),
    grantBurn: (account, { feature, periodStart }, { services }) =>
      services.grants.explain({ accountId: account.id, feature }, periodStart ?? null),
  },
  Grant: {
    id: (view) => view.doc._id,
    accountId: (view) => view.doc.accountId,
    feature: (view) => view.doc.feature,
    kind: (view) => view.doc.kind,
    amount: (view) => formatQuantity(view.doc.amount),
    burned: (view) => formatQuantity(view.burned),
    remaining: (view) => formatQuantity(view.remaining),
    priority: (view) => view.doc.priority,
    effectiveAt: (view) => view.doc.effectiveAt,
    expiresAt: (view) => view.doc.expiresAt,
    status: (view) => view.status,
    reason: (view) => view.doc.reason,
    issuedBy: (view) => view.doc.issuedBy,
    issuedAt: (view) => view.doc.issuedAt,
    idempotencyKey: (view) => view.doc.idempotencyKey,
    activeFrom: (view) => view.window.start,
    activeUntil: (view) => view.window.end,
    voidedAt: (view) => view.doc.voidedAt,
    voidedBy: (view) => view.doc.voidedBy,
    voidReason: (view) => view.doc.voidReason,
  },
  GrantBurn: {
    periodStart: (burn) => burn.period.start,
    periodEnd: (burn) => burn.period.end,
    included: (burn) => (burn.included === null ? null : formatQuantity(burn.included)),
    used: (burn) => formatQuantity(burn.used),
    includedBurned: (burn) => formatQuantity(burn.includedBurned),
    uncovered: (burn) => formatQuantity(burn.uncovered),
  },
  GrantPeriodBurn: {
    availableAtStart: (entry) => formatQuantity(entry.availableAtStart),
    burned: (entry) => formatQuantity(entry.burned),
    remainingAtEnd: (entry) => formatQuantity(entry.remainingAtEnd),
  },
  BurnLine: {
    units: (line) => formatQuantity(line.units),
  },
};
