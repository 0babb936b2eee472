import type { Resolvers } from '../../generated/graphql.js';
import { formatQuantity } from '../../shared/quantity.js';
import { authorize } from '../../shared/scopes.js';

/** Thin: authorize, hand over to AutoTopUpService, format micro-units as decimals. */
export const topUpResolvers: Resolvers = {
  Mutation: {
    setAutoTopUp(_root, { input }, { principal, requestId, services }) {
      // grants:write is an internal scope: a top-up issues grants (SPEC §7).
      authorize(principal, 'grants:write', input.accountId);
      return services.topUps.set(input, { actor: principal.actor, requestId });
    },
  },
  Account: {
    // The Account was authorized (entitlements:read + account) where it entered the graph.
    autoTopUps: (account, _args, { services }) => services.topUps.list(account.id),
  },
  AutoTopUp: {
    below: (doc) => formatQuantity(doc.below),
    amount: (doc) => formatQuantity(doc.amount),
  },
};
