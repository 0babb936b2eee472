import type { Resolvers } from '../../generated/graphql.js';
import { BadInputError } from '../../shared/errors.js';
import { parseQuantity } from '../../shared/quantity.js';
import { authorize } from '../../shared/scopes.js';

const FEATURE_KEY = /^[a-z][a-z0-9_]{0,63}$/;

function accountIdOf(value: string, field: string): string {
  if (value.length === 0 || value.length > 256) throw new BadInputError(`${field} must be 1 to 256 characters.`, { field });
  return value;
}

export const hierarchyResolvers: Resolvers = {
  Account: {
    async parent(account, _args, { services, loaders, principal }) {
      const parentId = await services.hierarchy.parentOf(account.id);
      if (parentId === null) return null;
      // Customer tokens see their own account only: the parent is another account.
      authorize(principal, 'entitlements:read', parentId);
      return { id: parentId, contracts: await loaders.contractsByAccount.load(parentId) };
    },
    async children(account, _args, { services, loaders, principal }) {
      const ids = await services.hierarchy.childrenOf(account.id);
      for (const id of ids) authorize(principal, 'entitlements:read', id);
      const contracts = await loaders.contractsByAccount.loadMany(ids);
      return ids.map((id, i) => {
        const list = contracts[i];
        if (list instanceof Error) throw list;
        return { id, contracts: list ?? [] };
      });
    },
  },
  Mutation: {
    async setAccountParent(_root, { accountId, parentId }, { principal, requestId, services, loaders }) {
      authorize(principal, 'contracts:write');
      const id = accountIdOf(accountId, 'accountId');
      await services.hierarchy.setParent(id, parentId == null ? null : accountIdOf(parentId, 'parentId'), {
        actor: principal.actor,
        requestId,
      });
      return { id, contracts: await loaders.contractsByAccount.load(id) };
    },
    async setAccountLimit(_root, { accountId, feature, limit }, { principal, requestId, services, loaders }) {
      authorize(principal, 'contracts:write');
      const id = accountIdOf(accountId, 'accountId');
      if (!FEATURE_KEY.test(feature) || !(await loaders.featureByKey.load(feature))) {
        throw new BadInputError(`Unknown feature "${feature.slice(0, 64)}": define it with defineFeature first.`, { field: 'feature' });
      }
      const cap = limit == null ? null : parseQuantity(limit, { field: 'limit', allowZero: true });
      await services.hierarchy.setLimit(id, feature, cap, { actor: principal.actor, requestId });
      return { id, contracts: await loaders.contractsByAccount.load(id) };
    },
  },
};
