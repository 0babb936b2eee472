import { rateLimitView } from '../../shared/rate-window.js';
import type { Resolvers } from '../../generated/graphql.js';
import { authorize } from '../../shared/scopes.js';
import { formatQuantity } from '../../shared/quantity.js';

export const catalogResolvers: Resolvers = {
  Query: {
    features(_root, _args, { principal, services }) {
      authorize(principal, 'entitlements:read');
      return services.catalog.listFeatures();
    },
    plan(_root, { key, version }, { principal, services }) {
      authorize(principal, 'entitlements:read');
      return services.catalog.findPlan(key, version);
    },
  },
  Mutation: {
    defineFeature(_root, { input }, { principal, requestId, services }) {
      authorize(principal, 'catalog:write');
      return services.catalog.defineFeature(input, { actor: principal.actor, requestId });
    },
    publishPlan(_root, { input }, { principal, requestId, services }) {
      authorize(principal, 'catalog:write');
      return services.catalog.publishPlan(input, { actor: principal.actor, requestId });
    },
    publishAddOn(_root, { input }, { principal, requestId, services }) {
      authorize(principal, 'catalog:write');
      return services.catalog.publishAddOn(input, { actor: principal.actor, requestId });
    },
  },
  Feature: {
    key: (feature) => feature._id,
  },
  PlanEntitlement: {
    async feature(terms, _args, { loaders }) {
      const feature = await loaders.featureByKey.load(terms.feature);
      // Features are never deleted and a plan can only name defined ones.
      if (!feature) throw new Error(`plan entitlement names missing feature "${terms.feature}"`);
      return feature;
    },
    included: (terms) => (terms.included === null ? null : formatQuantity(terms.included)),
    grace: (terms) => formatQuantity(terms.grace),
    pooled: (terms) => terms.pooled === true,
    rateLimit: (terms) => rateLimitView(terms.rateLimit),
    allow: (terms) => terms.allow ?? [],
    credits: (terms) => terms.credits ?? null,
  },
  CreditCost: {
    perUnit: (cost) => formatQuantity(cost.perUnit),
  },
  Overage: {
    per: (overage) => formatQuantity(overage.per),
    model: (overage) => overage.model ?? 'PER_UNIT',
    tiers: (overage) => overage.tiers ?? null,
  },
  PriceTier: {
    upTo: (tier) => (tier.upTo === null ? null : formatQuantity(tier.upTo)),
  },
  PlanVersion: {
    minimumCommit: (plan) => plan.minimumCommit ?? null,
  },
};
