import type { Resolvers } from '../../generated/graphql.js';
import { authorize } from '../../shared/scopes.js';

/** Thin: authorize (billing:write, never a customer token), hand over to BillingService. */
export const billingResolvers: Resolvers = {
  Mutation: {
    async setBillingCustomer(_root, { accountId, provider, customerId }, { principal, requestId, services, loaders }) {
      authorize(principal, 'billing:write', accountId);
      await services.billing.setCustomer(accountId, provider, customerId, { actor: principal.actor, requestId });
      return { id: accountId, contracts: await loaders.contractsByAccount.load(accountId) };
    },
    syncInvoice(_root, { contractId, periodStart }, { principal, requestId, services }) {
      authorize(principal, 'billing:write');
      return services.billing.sync(contractId, periodStart, { actor: principal.actor, requestId });
    },
  },
};
