/**
 * The GraphQL layer of every module, assembled for the schema (src/server/schema.ts).
 * Kept apart from the composition root so that the generated resolver types, which
 * name the context and therefore the services, never sit on an import cycle.
 */
import type { Resolvers } from '../generated/graphql.js';
import { DateTimeScalar, DecimalScalar, JSONScalar } from '../shared/scalars.js';
import { alertResolvers } from './alerts/resolvers.js';
import { auditResolvers } from './audit/resolvers.js';
import { catalogResolvers } from './catalog/resolvers.js';
import { contractResolvers } from './contracts/resolvers.js';
import { entitlementResolvers } from './entitlements/resolvers.js';
import { grantResolvers } from './grants/resolvers.js';
import { hierarchyResolvers } from './hierarchy/resolvers.js';
import { ratingResolvers } from './rating/resolvers.js';
import { topUpResolvers } from './topups/resolvers.js';
import { usageResolvers } from './usage/resolvers.js';
import { webhookResolvers } from './webhooks/resolvers.js';
import { billingResolvers } from './billing/resolvers.js';

export const resolvers: Resolvers[] = [
  { Decimal: DecimalScalar, DateTime: DateTimeScalar, JSON: JSONScalar },
  contractResolvers,
  hierarchyResolvers,
  auditResolvers,
  catalogResolvers,
  entitlementResolvers,
  alertResolvers,
  usageResolvers,
  grantResolvers,
  topUpResolvers,
  ratingResolvers,
  webhookResolvers,
  billingResolvers,
];
