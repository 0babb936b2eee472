import type { Resolvers } from '../../generated/graphql.js';
import { authorize } from '../../shared/scopes.js';
import { formatQuantity } from '../../shared/quantity.js';

/**
 * Thin: authorize, hand over to UsageService, format micro-units as decimals. Input is
 * validated by the service before anything is written.
 */
export const usageResolvers: Resolvers = {
  Mutation: {
    async recordUsage(_root, { input }, { principal, services, requestId }) {
      authorize(principal, 'usage:write', input.accountId);
      return services.usage.recordUsage(input, { actor: principal.actor, requestId });
    },
    async setUsage(_root, { input }, { principal, services, requestId }) {
      authorize(principal, 'usage:write', input.accountId);
      return services.usage.setUsage(input, { actor: principal.actor, requestId });
    },
    async recordUsageBatch(_root, { events }, { principal, services, requestId }) {
      authorize(principal, 'usage:write');
      for (const accountId of new Set(events.map((event) => event.accountId))) authorize(principal, 'usage:write', accountId);
      return services.usage.recordUsageBatch(events, { actor: principal.actor, requestId });
    },
    async reconcileUsage(_root, { accountId, feature, periodStart }, { principal, services, requestId }) {
      authorize(principal, 'usage:reconcile', accountId);
      return services.usage.reconcile({ accountId, feature, periodStart }, { actor: principal.actor, requestId });
    },
  },
  Account: {
    // The Account was authorized (entitlements:read + account) where it entered the graph.
    usage: (account, { feature, from, to, granularity, groupBy }, { services }) =>
      services.usage.usageSeries(account.id, feature, granularity ?? 'DAY', from, to, groupBy),
  },
  UsageReceipt: {
    quantity: (receipt) => formatQuantity(receipt.quantity),
    // Resolved only when asked for, so a batch does not pay for 1,000 entitlements by default.
    entitlement: (receipt, _args, { loaders }) =>
      loaders.entitlementView.load({ accountId: receipt.accountId, feature: receipt.feature, at: receipt.timestamp }),
  },
  UsageSeries: {
    total: (series) => formatQuantity(series.total),
    groups: (series) => series.groups?.map((group) => ({ ...group, total: formatQuantity(group.total) })) ?? null,
  },
  UsagePoint: {
    used: (point) => formatQuantity(point.used),
  },
  UsageReconciliation: {
    observed: (report) => formatQuantity(report.observed),
    expected: (report) => formatQuantity(report.expected),
    drift: (report) => formatQuantity(report.drift),
  },
};
