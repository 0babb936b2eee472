import { describe, expect, it, vi } from 'vitest';
import { createLogger } from '../logger.js';
import type { Services } from '../modules/index.js';
import { createAuthenticator } from './auth.js';
import { createContextFactory } from './context.js';

/** Apollo Server's per-request copy of the context (ApolloServer.js `cloneObject`). */
const cloneAsApolloDoes = <T extends object>(object: T): T => Object.assign(Object.create(Object.getPrototypeOf(object)), object);

describe('request context', () => {
  it('builds neither the child logger nor the loaders when Apollo copies it, and the copy shares them once built', async () => {
    const logger = createLogger('silent');
    const child = vi.spyOn(logger, 'child');
    const services = { contracts: {}, catalog: {}, entitlements: {}, grants: {} } as unknown as Services;
    const build = createContextFactory({ authenticator: createAuthenticator({ mode: 'open' } as never), services, logger });
    const context = await build({ requestId: 'req-1' });
    const copy = cloneAsApolloDoes(context);
    expect(child).not.toHaveBeenCalled();
    expect(copy.requestId).toBe('req-1');
    expect(copy.principal).toBe(context.principal);
    expect(copy.services).toBe(services);
    // Built on first use, once, and the same objects through either reference.
    expect(copy.loaders).toBe(context.loaders);
    expect(copy.logger).toBe(context.logger);
    expect(child).toHaveBeenCalledTimes(1);
    expect(copy.loaders.contractsByAccount).toBeDefined();
  });
});
