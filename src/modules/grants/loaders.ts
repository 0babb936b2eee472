import DataLoader from 'dataloader';
import type { GrantListing, GrantService, GrantView } from './service.js';

/** Per-request loaders: `Account.grants` on N accounts is one grants query and one burn computation. */
export function createGrantLoaders(grants: GrantService) {
  return {
    grantListing: new DataLoader<GrantListing, GrantView[], string>((listings) => grants.listGrants(listings), {
      cacheKeyFn: ({ accountId, feature, activeOnly }) => JSON.stringify([accountId, feature, activeOnly]),
    }),
  };
}

export type GrantLoaders = ReturnType<typeof createGrantLoaders>;
