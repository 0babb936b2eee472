import type { Resolvers } from '../../generated/graphql.js';
import { authorize } from '../../shared/scopes.js';
import { BadInputError } from '../../shared/errors.js';
import { CursorError, encodeCursor } from './repository.js';

const MAX_PAGE = 200;

export const auditResolvers: Resolvers = {
  Query: {
    async auditLog(_root, { accountId, first, after }, { principal, services }) {
      // A customer token is pinned to its account even when it does not name one.
      const scopedAccount = accountId ?? principal.accountId;
      authorize(principal, 'audit:read', scopedAccount ?? undefined);
      const pageSize = first ?? 50;
      if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > MAX_PAGE) {
        throw new BadInputError(`first must be between 1 and ${MAX_PAGE}; got ${pageSize}.`, { field: 'first' });
      }
      try {
        const { entries, hasNextPage } = await services.audit.page({
          accountId: scopedAccount ?? undefined,
          first: pageSize,
          after: after ?? undefined,
        });
        const edges = entries.map((node) => ({ cursor: encodeCursor(node._id), node }));
        return { edges, pageInfo: { hasNextPage, endCursor: edges.at(-1)?.cursor ?? null } };
      } catch (error) {
        if (error instanceof CursorError) throw new BadInputError('after is not a cursor returned by auditLog.', { field: 'after' });
        throw error;
      }
    },
  },
  AuditEntry: {
    id: (entry) => entry._id.toHexString(),
  },
};
