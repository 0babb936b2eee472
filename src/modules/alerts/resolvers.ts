import type { Resolvers } from '../../generated/graphql.js';
import type { DomainTelemetry } from '../../shared/telemetry.js';
import { authorize } from '../../shared/scopes.js';
import { BadInputError, SubscriberTooSlowError } from '../../shared/errors.js';
import { formatQuantity } from '../../shared/quantity.js';
import type { AlertDoc, EntitlementUpdateView } from './model.js';
import type { AlertDelivery } from './queues.js';
import { percentUsed } from './thresholds.js';

const MAX_PAGE = 200;
const MAX_FEATURES = 100;
/** What `UsageAlert.periodEnd` (non-null in SPEC §2) says for a period that never ends. */
const NEVER_ENDS = new Date('9999-12-31T23:59:59.999Z');

function featureFilter(features: readonly string[] | null | undefined): readonly string[] | null {
  if (features && features.length > MAX_FEATURES) {
    throw new BadInputError(`features lists ${features.length} keys; subscribe to at most ${MAX_FEATURES}, or omit it for all.`, {
      field: 'features',
    });
  }
  return features ?? null;
}

export const alertResolvers: Resolvers = {
  Account: {
    // The account itself was authorized where it entered the graph (__resolveReference).
    alerts(account, { feature, first }, { services }) {
      const pageSize = first ?? 50;
      if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > MAX_PAGE) {
        throw new BadInputError(`first must be between 1 and ${MAX_PAGE}; got ${pageSize}.`, { field: 'first' });
      }
      return services.alerts.list(account.id, feature ?? undefined, pageSize);
    },
  },
  Subscription: {
    usageAlerts: {
      subscribe(_root, { accountId, features }, { principal, services }) {
        authorize(principal, 'entitlements:read', accountId);
        return services.live.hub.subscribeAlerts(accountId, featureFilter(features));
      },
      resolve(delivery: AlertDelivery<AlertDoc>, _args: unknown, { services }: { services: { telemetry: DomainTelemetry } }): AlertDoc {
        if (delivery.kind === 'overflow') {
          services.telemetry.subscriberOverflow();
          throw new SubscriberTooSlowError(
            `This subscription fell more than ${delivery.bound} alerts behind and was ended. Subscribe again, then read Account.alerts for what was missed.`,
          );
        }
        services.telemetry.alertDelivered();
        return delivery.alert;
      },
    },
    entitlementUpdated: {
      subscribe(_root, { accountId, features }, { principal, services }) {
        authorize(principal, 'entitlements:read', accountId);
        return services.live.hub.subscribeBalances(accountId, featureFilter(features));
      },
      resolve: (update: EntitlementUpdateView): EntitlementUpdateView => update,
    },
  },
  UsageAlert: {
    id: (alert) => alert._id,
    used: (alert) => formatQuantity(alert.used),
    capacity: (alert) => formatQuantity(alert.capacity),
    percentUsed: (alert) => percentUsed(alert.used, alert.capacity),
    periodEnd: (alert) => alert.periodEnd ?? NEVER_ENDS,
  },
};
