import type { Resolvers } from '../../generated/graphql.js';
import { authorize } from '../../server/auth.js';

/**
 * Authorization happens where an object enters the graph (entity references and root
 * fields), so every field below an Account or Contract is already cleared for the caller.
 */
export const contractResolvers: Resolvers = {
  Account: {
    async __resolveReference(reference, { principal, loaders }) {
      authorize(principal, 'entitlements:read', reference.id);
      return { id: reference.id, contracts: await loaders.contractsByAccount.load(reference.id) };
    },
    contracts: (account) => account.contracts,
  },
  Contract: {
    // Unknown contract ids resolve to null: we cannot describe terms we were never sent.
    async __resolveReference(reference, { principal, loaders }) {
      const contract = await loaders.contractById.load(reference.id);
      if (contract) authorize(principal, 'entitlements:read', contract.accountId);
      return contract;
    },
    id: (contract) => contract._id,
    async account(contract, _args, { loaders }) {
      return { id: contract.accountId, contracts: await loaders.contractsByAccount.load(contract.accountId) };
    },
  },
};
