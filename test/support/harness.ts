import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import type { CommandStartedEvent } from 'mongodb';
import { inject } from 'vitest';
import { startAllotment, type RunningAllotment } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { TERMS_FEED_COMMENT, TRIAL_PASS_COMMENT } from '../../src/modules/contracts/index.js';
import { GRANT_ANNOUNCER_COMMENT } from '../../src/modules/grants/index.js';
import { HIERARCHY_WATCH_COMMENT } from '../../src/modules/hierarchy/membership.js';
import { TOP_UP_CHECK_COMMENT, TOP_UP_REPAIR_COMMENT } from '../../src/modules/topups/index.js';
import { SWEEPER_COMMENT } from '../../src/modules/usage/sweeper.js';
import { DISPATCHER_COMMENT } from '../../src/modules/webhooks/index.js';

/** Background passes tag their reads: they are not a request's round trips. */
const BACKGROUND_COMMENTS: ReadonlySet<unknown> = new Set([
  SWEEPER_COMMENT,
  HIERARCHY_WATCH_COMMENT,
  DISPATCHER_COMMENT,
  GRANT_ANNOUNCER_COMMENT,
  TOP_UP_REPAIR_COMMENT,
  TOP_UP_CHECK_COMMENT,
  TRIAL_PASS_COMMENT,
  TERMS_FEED_COMMENT,
]);

export const TEST_JWT_SECRET = 'test-secret-that-is-long-enough-for-hs256-0123456789';
export const ALL_SCOPES =
  'entitlements:read usage:write grants:write catalog:write contracts:write audit:read usage:reconcile webhooks:write billing:write';

export interface TokenClaims {
  sub?: string;
  scope?: string;
  account_id?: string;
  /** Seconds from now; negative makes an expired token. */
  expiresIn?: number;
}

export async function signToken({
  sub = 'test-operator',
  scope = ALL_SCOPES,
  account_id,
  expiresIn = 3600,
}: TokenClaims = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ scope, ...(account_id ? { account_id } : {}) })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setIssuedAt(now - 60)
    .setExpirationTime(now + expiresIn)
    .sign(new TextEncoder().encode(TEST_JWT_SECRET));
}

export interface GraphQLResponse<T = Record<string, any>> {
  status: number;
  data?: T | null;
  errors?: Array<{ message: string; path?: Array<string | number>; extensions?: { code?: string } & Record<string, unknown> }>;
}

export interface TestInstance extends RunningAllotment {
  dbName: string;
  wsUrl: string;
  /** Every command the instance's driver sent, for round-trip counting. */
  commands: CommandStartedEvent[];
  /** POST a GraphQL operation; `token: null` sends none, the default is an all-scopes operator token. */
  graphql<T = Record<string, any>>(
    query: string,
    variables?: Record<string, unknown>,
    options?: { token?: string | null },
  ): Promise<GraphQLResponse<T>>;
}

export function uniqueDbName(prefix = 't'): string {
  return `${prefix}_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
}

/**
 * A real Allotment instance on a free port against the shared test database server.
 * Two instances given the same `dbName` share one database, like two pods would.
 */
export async function startTestInstance(
  options: {
    dbName?: string;
    auth?: 'hs256' | 'open';
    env?: Record<string, string> /** Another database server than the shared one. */;
    mongodbUri?: string;
    /** Where the instance's log lines go (LOG_LEVEL still applies); pino's default is stdout. */
    logDestination?: { write(line: string): void };
  } = {},
): Promise<TestInstance> {
  const dbName = options.dbName ?? uniqueDbName();
  const config = loadConfig({
    NODE_ENV: 'test',
    PORT: '0',
    MONGODB_DB: dbName,
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'silent',
    ...(options.auth === 'open' ? {} : { AUTH_JWT_SECRET: TEST_JWT_SECRET }),
    ...options.env,
  });
  const commands: CommandStartedEvent[] = [];
  const instance = await startAllotment({
    config,
    logger: createLogger(config.logLevel, options.logDestination),
    mongodbUri: options.mongodbUri ?? inject('mongoUri'),
    clientOptions: { monitorCommands: true },
  });
  instance.database.client.on('commandStarted', (event) => commands.push(event));
  const defaultToken = await signToken();
  return {
    ...instance,
    dbName,
    wsUrl: instance.url.replace(/^http/, 'ws'),
    commands,
    async graphql(query, variables, { token = defaultToken } = {}) {
      const response = await fetch(instance.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
        body: JSON.stringify({ query, variables }),
      });
      const body = (await response.json()) as Omit<GraphQLResponse, 'status'>;
      return { status: response.status, ...body } as GraphQLResponse<any>;
    },
  };
}

/** Commands sent since `from`, without background passes (the usage sweeper, the hierarchy watch, the webhook dispatcher, the grant announcer, the trial pass, the terms feed), which are not a request's round trips. */
export function requestCommands(instance: TestInstance, from = 0): CommandStartedEvent[] {
  return instance.commands.slice(from).filter((event) => !BACKGROUND_COMMENTS.has(event.command.comment));
}

/** Commands of the given names (e.g. 'find', 'aggregate') sent since `from`. */
export function countCommands(instance: TestInstance, names: string[], from = 0): number {
  return requestCommands(instance, from).filter((event) => names.includes(event.commandName)).length;
}
