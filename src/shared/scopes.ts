/**
 * Scopes and principals: who is calling and what they may do (SPEC §3). The vocabulary
 * every module's resolvers authorise with; the server turns tokens into principals.
 */
import { ForbiddenError, UnauthenticatedError } from './errors.js';

export const SCOPES = [
  'entitlements:read',
  'usage:write',
  'grants:write',
  'catalog:write',
  'contracts:write',
  'audit:read',
  'usage:reconcile',
  'webhooks:write',
  'billing:write',
] as const;
export type Scope = (typeof SCOPES)[number];

/** Scopes that only internal tools may hold: a customer token is refused even if it claims them. */
const INTERNAL_SCOPES: ReadonlySet<Scope> = new Set<Scope>([
  'grants:write',
  'catalog:write',
  'contracts:write',
  'usage:reconcile',
  'webhooks:write',
  'billing:write',
]);

/**
 * Who is calling. `accountId` is set for customer tokens, which may only touch that
 * account; service tokens have none and are limited by scopes alone.
 */
export interface Principal {
  actor: string;
  scopes: ReadonlySet<string>;
  accountId?: string;
  authenticated: boolean;
  /**
   * When the token stops being valid (epoch ms, from `exp`). A WebSocket connection
   * authenticates once, so its subscriptions end at this instant (see websocket.ts).
   */
  expiresAt?: number;
}

/** Throws unless the principal holds `scope`; internal scopes also exclude customer tokens. */
export function requireScope(principal: Principal, scope: Scope): void {
  if (!principal.authenticated) throw new UnauthenticatedError();
  if (!principal.scopes.has(scope)) {
    throw new ForbiddenError(`This operation needs the "${scope}" scope, which the token does not carry.`);
  }
  if (principal.accountId !== undefined && INTERNAL_SCOPES.has(scope)) {
    throw new ForbiddenError(`Customer tokens cannot use "${scope}" operations.`);
  }
}

/** Throws unless the principal may act on `accountId` (customer tokens see their own account only). */
export function requireAccount(principal: Principal, accountId: string): void {
  if (!principal.authenticated) throw new UnauthenticatedError();
  if (principal.accountId !== undefined && principal.accountId !== accountId) {
    throw new ForbiddenError(`This token is limited to account "${principal.accountId}" and cannot access "${accountId}".`);
  }
}

/** The usual pair: a scope, and the account it is exercised on. */
export function authorize(principal: Principal, scope: Scope, accountId?: string): void {
  requireScope(principal, scope);
  if (accountId !== undefined) requireAccount(principal, accountId);
}
