import type { EntitlementDecision, Resolvers } from '../../generated/graphql.js';
import { authorize } from '../../shared/scopes.js';
import { BadInputError } from '../../shared/errors.js';
import { formatQuantity, parseQuantity, type Micros } from '../../shared/quantity.js';
import type { Decision } from './decision.js';
import { type CheckRequest, MAX_CHECKS } from './service.js';
import { parseCheckProperties } from './properties.js';
import { rateLimitView } from '../../shared/rate-window.js';
import { selectsAny } from './selection.js';

/** The decision fields that include grants even when they cannot change the decision. */
const GRANTED_FIGURES = ['capacity', 'remaining'];

const fmt = (micros: Micros | null): string | null => (micros === null ? null : formatQuantity(micros));

function parseRequested(value: string | null | undefined, field: string): Micros {
  return parseQuantity(value ?? '1', { field, allowZero: true });
}

function toDecisionResult({ accountId, feature }: CheckRequest, decision: Decision): EntitlementDecision {
  return {
    allowed: decision.allowed,
    reason: decision.reason,
    accountId,
    feature,
    requested: formatQuantity(decision.requested),
    used: formatQuantity(decision.used),
    capacity: fmt(decision.capacity),
    remaining: fmt(decision.remaining),
    enforcement: decision.enforcement,
    overageUnits: formatQuantity(decision.overageUnits),
    periodStart: decision.periodStart,
    periodEnd: decision.periodEnd,
    delinquent: decision.delinquent,
    retryAfter: decision.retryAfter ?? null,
  };
}

export const entitlementResolvers: Resolvers = {
  Query: {
    async checkEntitlement(_root, { accountId, feature, requestedUnits, at, properties }, { principal, services, loaders }, info) {
      authorize(principal, 'entitlements:read', accountId);
      const request = {
        accountId,
        feature,
        requested: parseRequested(requestedUnits, 'requestedUnits'),
        properties: parseCheckProperties(properties, 'properties'),
      };
      const [decision] = await services.entitlements.check([request], at ?? new Date(), loaders, {
        capacity: selectsAny(info, GRANTED_FIGURES),
      });
      return toDecisionResult(request, decision!);
    },
    async checkEntitlements(_root, { checks }, { principal, services, loaders }, info) {
      if (checks.length > MAX_CHECKS) {
        throw new BadInputError(
          `checkEntitlements takes at most ${MAX_CHECKS} checks; got ${checks.length}. Split them into several requests.`,
          {
            field: 'checks',
          },
        );
      }
      authorize(principal, 'entitlements:read');
      for (const accountId of new Set(checks.map((check) => check.accountId))) authorize(principal, 'entitlements:read', accountId);
      const requests = checks.map((check, i) => ({
        accountId: check.accountId,
        feature: check.feature,
        requested: parseRequested(check.requestedUnits, `checks[${i}].requestedUnits`),
        properties: parseCheckProperties(check.properties, `checks[${i}].properties`),
      }));
      // Grants are read only where they decide, unless the caller asked for the figures that include them.
      const decisions = await services.entitlements.check(requests, new Date(), loaders, { capacity: selectsAny(info, GRANTED_FIGURES) });
      return decisions.map((decision, i) => toDecisionResult(requests[i]!, decision));
    },
  },
  Account: {
    async entitlements(account, { at }, { services, loaders }) {
      const [own, pooled] = await Promise.all([
        services.entitlements.featuresOfAccount(account.contracts, at ?? new Date(), loaders),
        services.entitlements.pooledFeaturesOf(account.id, at ?? new Date(), loaders),
      ]);
      const features = pooled.length === 0 ? own : [...new Set([...own, ...pooled])].sort();
      return loaders.entitlementView
        .loadMany(features.map((feature) => ({ accountId: account.id, feature, at: at ?? undefined })))
        .then((views) =>
          views.map((view) => {
            if (view instanceof Error) throw view;
            return view;
          }),
        );
    },
    async entitlement(account, { feature, at }, { loaders }) {
      const featureDoc = await loaders.featureByKey.load(feature);
      if (!featureDoc) return null;
      return loaders.entitlementView.load({ accountId: account.id, feature, at: at ?? undefined });
    },
  },
  Contract: {
    entitlements: (contract, _args, { services, loaders }) => services.entitlements.contractEntitlements(contract, new Date(), loaders),
  },
  Entitlement: {
    async feature(view, _args, { loaders }) {
      const feature = await loaders.featureByKey.load(view.terms.feature);
      if (!feature) throw new Error(`entitlement for missing feature "${view.terms.feature}"`);
      return feature;
    },
    hasAccess: (view) => view.terms.hasAccess,
    enforcement: (view) => view.terms.enforcement,
    included: (view) => fmt(view.terms.included),
    granted: (view) => formatQuantity(view.granted),
    capacity: (view) => fmt(view.capacity),
    grace: (view) => formatQuantity(view.terms.grace),
    used: (view) => formatQuantity(view.used),
    remaining: (view) => fmt(view.remaining),
    overage: (view) => formatQuantity(view.overage),
    percentUsed: (view) => view.percentUsed,
    overagePrice: (view) => view.overagePrice,
    periodStart: (view) => view.terms.period?.start ?? null,
    periodEnd: (view) => view.terms.period?.end ?? null,
    delinquent: (view) => view.terms.delinquent,
    config: (view) => view.terms.config ?? null,
    resetPeriod: (view) => view.terms.resetPeriod,
    thresholds: (view) => view.terms.thresholds,
    denialReason: (view) => (view.terms.hasAccess ? null : (view.terms.access as Exclude<typeof view.terms.access, 'ENTITLED'>)),
    contractIds: (view) => view.terms.contractIds,
    pooledFrom: (view) => view.terms.pool?.ownerId ?? null,
    accountUsed: (view) => formatQuantity(view.accountUsed ?? view.used),
    accountLimit: (view) => fmt(view.terms.pool?.limit ?? null),
    rateLimit: (view) => rateLimitView(view.terms.rateLimit),
    allow: (view) => view.terms.allow ?? null,
    creditFeature: (view) => view.terms.burn?.creditFeature ?? null,
    creditsPerUnit: (view) => fmt(view.terms.burn?.perUnit ?? null),
  },
};
