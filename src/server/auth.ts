import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import type { AuthConfig } from '../config.js';
import { UnauthenticatedError } from '../shared/errors.js';
import { type Principal, SCOPES } from '../shared/scopes.js';

export type { Principal, Scope } from '../shared/scopes.js';

const ANONYMOUS: Principal = { actor: 'anonymous', scopes: new Set(), authenticated: false };
const OPEN_DEVELOPER: Principal = { actor: 'dev-open-mode', scopes: new Set(SCOPES), authenticated: true };

export interface Authenticator {
  readonly mode: AuthConfig['mode'];
  /** Verifies a bearer header. No header gives the anonymous principal; a bad one throws. */
  authenticate(authorization: string | undefined | null): Promise<Principal>;
}

export function createAuthenticator(config: AuthConfig): Authenticator {
  if (config.mode === 'open') {
    return { mode: 'open', authenticate: async () => OPEN_DEVELOPER };
  }
  const key = config.mode === 'hs256' ? config.secret : createRemoteJWKSet(config.jwksUrl);
  const options = {
    issuer: config.issuer,
    audience: config.audience,
    algorithms: config.mode === 'hs256' ? ['HS256'] : ['RS256', 'ES256', 'PS256', 'EdDSA'],
    // A token without `exp` would never expire, and neither would a WebSocket connection
    // (and its subscriptions) opened with it: every token must say when it ends.
    requiredClaims: ['exp'],
  };
  return {
    mode: config.mode,
    async authenticate(authorization) {
      if (!authorization) return ANONYMOUS;
      const match = /^Bearer\s+(\S+)$/i.exec(authorization.trim());
      if (!match?.[1]) throw new UnauthenticatedError('Malformed Authorization header: expected "Bearer <jwt>".');
      let payload: JWTPayload;
      try {
        // `key` is a union; jose's overloads want one or the other.
        payload =
          key instanceof Uint8Array ? (await jwtVerify(match[1], key, options)).payload : (await jwtVerify(match[1], key, options)).payload;
      } catch (error) {
        throw new UnauthenticatedError(describeJwtFailure(error));
      }
      return principalFromClaims(payload);
    },
  };
}

function describeJwtFailure(error: unknown): string {
  if (error instanceof joseErrors.JWTExpired) return 'Token expired: obtain a new token.';
  if (error instanceof joseErrors.JWTClaimValidationFailed && error.claim === 'exp' && error.reason === 'missing') {
    return 'Token rejected: it has no "exp" claim. Tokens must expire; issue one with an expiry.';
  }
  if (error instanceof joseErrors.JWTClaimValidationFailed) return `Token rejected: claim "${error.claim}" ${error.reason}.`;
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return 'Token signature is invalid.';
  return 'Token could not be verified.';
}

function principalFromClaims(payload: JWTPayload): Principal {
  if (typeof payload.sub !== 'string' || payload.sub.length === 0) {
    throw new UnauthenticatedError('Token has no "sub" claim: the actor must be identified.');
  }
  const scope = typeof payload.scope === 'string' ? payload.scope : '';
  const accountId = payload.account_id;
  if (accountId !== undefined && (typeof accountId !== 'string' || accountId.length === 0)) {
    throw new UnauthenticatedError('Token claim "account_id" must be a non-empty string.');
  }
  return {
    actor: payload.sub,
    scopes: new Set(scope.split(/\s+/).filter(Boolean)),
    accountId,
    authenticated: true,
    expiresAt: typeof payload.exp === 'number' ? payload.exp * 1000 : undefined,
  };
}
