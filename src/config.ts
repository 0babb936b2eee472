import { z } from 'zod';
import type { LimitsConfig } from './server/limits.js';

/**
 * Configuration comes from the environment only, validated once at start-up so that a
 * typo fails the boot with a readable message instead of a 3 a.m. page.
 */
const EnvSchema = z
  .object({
    NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
    PORT: z.coerce.number().int().min(0).max(65535).default(4001),
    HOST: z.string().min(1).default('127.0.0.1'),
    MONGODB_URI: z
      .string()
      .regex(/^mongodb(\+srv)?:\/\//, 'must start with mongodb:// or mongodb+srv://')
      .optional(),
    MONGODB_DB: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,63}$/, 'letters, digits, "_" or "-", at most 63 characters')
      .default('allotment'),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    AUTH_JWT_SECRET: z.string().min(32, 'must be at least 32 characters for HS256').optional(),
    AUTH_JWKS_URL: z.url().optional(),
    AUTH_ISSUER: z.string().min(1).optional(),
    AUTH_AUDIENCE: z.string().min(1).optional(),
    /** Seconds a usage-event lease lives before another worker may take it over. */
    USAGE_LEASE_SECONDS: z.coerce.number().int().min(1).max(3600).default(15),
    /** How long idempotency keys and raw events are kept (R7). */
    RETENTION_DAYS: z.coerce.number().int().min(1).max(3650).default(400),
    /** How long a database operation waits for a reachable server before failing (retryable). */
    MONGODB_SERVER_SELECTION_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(2_000),
    /** On SIGTERM/SIGINT, how long in-flight HTTP requests may take before their sockets are cut. */
    SHUTDOWN_GRACE_SECONDS: z.coerce.number().min(0).max(300).default(10),
    /**
     * How instances follow each other's alerts and balance changes: `auto` uses change
     * streams on a replica set or sharded cluster and polls elsewhere; `change-stream`
     * tries them on any server (falling back to polling if refused); `polling` never does.
     */
    LIVE_FEED: z.enum(['auto', 'change-stream', 'polling']).default('auto'),
    /**
     * Request limits (docs/limits.md). Body: a 1,000-event recordUsageBatch with realistic
     * properties is ~390 KB, so 1 MiB leaves ~2.5x headroom and no more.
     */
    LIMIT_MAX_BODY_BYTES: z.coerce
      .number()
      .int()
      .min(16 * 1024)
      .max(64 * 1024 * 1024)
      .default(1024 * 1024),
    LIMIT_MAX_TOKENS: z.coerce.number().int().min(100).max(1_000_000).default(10_000),
    LIMIT_MAX_DEPTH: z.coerce.number().int().min(2).max(100).default(10),
    LIMIT_MAX_ALIASES: z.coerce.number().int().min(0).max(10_000).default(30),
    LIMIT_MAX_DIRECTIVES: z.coerce.number().int().min(0).max(10_000).default(50),
    LIMIT_MAX_COST: z.coerce.number().int().min(10).max(10_000_000).default(5_000),
    LIMIT_MAX_ENTITIES: z.coerce.number().int().min(1).max(100_000).default(1_000),
    /** Operation-wide; the per-field caps (1,000 each) still apply, so higher values change nothing. */
    LIMIT_MAX_CHECKS: z.coerce.number().int().min(1).max(1_000).default(1_000),
    LIMIT_MAX_BATCH_EVENTS: z.coerce.number().int().min(1).max(1_000).default(1_000),
    /**
     * Operations one WebSocket connection may have running at once (a gateway multiplexes
     * every subscription of one token onto one connection). Over it, a subscribe is refused
     * with BAD_REQUEST and the connection stays up.
     */
    WS_MAX_SUBSCRIPTIONS_PER_CONNECTION: z.coerce.number().int().min(1).max(100_000).default(1000),
    /** Webhooks (docs/webhooks.md): private and loopback targets are refused unless true. */
    WEBHOOKS_ALLOW_PRIVATE: z.enum(['true', 'false']).default('false'),
    /** First retry delay; each further failure doubles it (capped at 6 h), with jitter, for at least 24 h. */
    WEBHOOKS_RETRY_BASE_SECONDS: z.coerce.number().min(0.01).max(3600).default(30),
    /** Deliveries one instance sends to one endpoint at once. */
    WEBHOOKS_CONCURRENCY_PER_ENDPOINT: z.coerce.number().int().min(1).max(100).default(4),
    /** How long a receiver may take to answer before the attempt counts as failed. */
    WEBHOOKS_TIMEOUT_SECONDS: z.coerce.number().min(0.1).max(60).default(10),
    /** Stripe sync (docs/stripe.md): the secret key, and another API base (stripe-mock) if set. */
    STRIPE_API_KEY: z.string().min(1).optional(),
    STRIPE_API_BASE: z.url().optional(),
    /** Sync every finalised invoice of an account with a Stripe customer, without a syncInvoice call. */
    STRIPE_SYNC_ON_FINALIZE: z.enum(['true', 'false']).default('false'),
    /** R18: how often the trial pass stores and announces trial ends nobody read (checks never wait for it). */
    TRIAL_SWEEP_SECONDS: z.coerce.number().min(0.1).max(86_400).default(5),
    /**
     * Terms cache (docs/performance.md, "Terms cache"): accounts whose contracts, and
     * accounts whose hierarchy lineage, one instance keeps in memory (each, LRU); 0 turns it off.
     */
    TERMS_CACHE_MAX_ENTRIES: z.coerce.number().int().min(0).max(10_000_000).default(10_000),
    /** The most a terms change made on another instance may go unseen here; 0 turns the cache off. */
    TERMS_CACHE_STALENESS_MS: z.coerce
      .number()
      .int()
      .refine((ms) => ms === 0 || (ms >= 200 && ms <= 60_000), 'must be 0 (off) or between 200 and 60000')
      .default(500),
    /** Segment ingestion (docs/segment.md): JSON object from event name to feature key. */
    SEGMENT_EVENTS: z
      .string()
      .default('{}')
      .refine((text) => {
        try {
          const parsed: unknown = JSON.parse(text);
          return (
            typeof parsed === 'object' &&
            parsed !== null &&
            !Array.isArray(parsed) &&
            Object.values(parsed).every((value) => typeof value === 'string' && /^[a-z][a-z0-9_]*$/.test(value))
          );
        } catch {
          return false;
        }
      }, 'must be a JSON object from event names to feature keys, e.g. {"API Call":"api_calls"}'),
  })
  .superRefine((env, ctx) => {
    if (env.AUTH_JWT_SECRET && env.AUTH_JWKS_URL) {
      ctx.addIssue({ code: 'custom', path: ['AUTH_JWKS_URL'], message: 'set AUTH_JWT_SECRET or AUTH_JWKS_URL, not both' });
    }
    if (env.NODE_ENV === 'production' && !env.AUTH_JWT_SECRET && !env.AUTH_JWKS_URL) {
      ctx.addIssue({
        code: 'custom',
        path: ['AUTH_JWT_SECRET'],
        message: 'production refuses to run open: set AUTH_JWT_SECRET (HS256) or AUTH_JWKS_URL',
      });
    }
    if (env.NODE_ENV === 'production' && !env.MONGODB_URI) {
      ctx.addIssue({ code: 'custom', path: ['MONGODB_URI'], message: 'production needs a real database: set MONGODB_URI' });
    }
  });

export type AuthConfig =
  | { mode: 'open' }
  | { mode: 'hs256'; secret: Uint8Array; issuer?: string; audience?: string }
  | { mode: 'jwks'; jwksUrl: URL; issuer?: string; audience?: string };

export interface Config {
  env: 'development' | 'test' | 'production';
  port: number;
  host: string;
  mongodbUri?: string;
  mongodbDb: string;
  logLevel: string;
  auth: AuthConfig;
  usageLeaseMs: number;
  retentionDays: number;
  /** Driver `serverSelectionTimeoutMS`: how fast a request fails while the database is unreachable. */
  mongodbServerSelectionTimeoutMs: number;
  /** How long a stop waits for in-flight HTTP requests before closing their sockets. */
  shutdownGraceMs: number;
  liveFeed: 'auto' | 'change-stream' | 'polling';
  /** Request limits, applied before any resolver runs (src/server/limits.ts). */
  limits: LimitsConfig;
  /** Operations (subscriptions and queries) one WebSocket connection may run at once. */
  wsMaxSubscriptionsPerConnection: number;
  webhooks: { allowPrivate: boolean; retryBaseMs: number; concurrencyPerEndpoint: number; timeoutMs: number };
  stripe: { apiKey?: string; apiBase?: string; syncOnFinalize: boolean };
  /** Segment event name → feature key. */
  segmentEvents: Record<string, string>;
  /** R18: the trial pass's interval (docs/trials.md). */
  trialSweepMs: number;
  /** Terms cache: entries per cache (0: off) and the staleness bound across instances (0: off). */
  termsCache: { maxEntries: number; maxStalenessMs: number };
}

export class ConfigError extends Error {}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => `  ${issue.path.join('.') || '(env)'}: ${issue.message}`);
    throw new ConfigError(`Invalid configuration:\n${lines.join('\n')}`);
  }
  const e = parsed.data;
  const claims = { issuer: e.AUTH_ISSUER, audience: e.AUTH_AUDIENCE };
  const auth: AuthConfig = e.AUTH_JWT_SECRET
    ? { mode: 'hs256', secret: new TextEncoder().encode(e.AUTH_JWT_SECRET), ...claims }
    : e.AUTH_JWKS_URL
      ? { mode: 'jwks', jwksUrl: new URL(e.AUTH_JWKS_URL), ...claims }
      : { mode: 'open' };
  return {
    env: e.NODE_ENV,
    port: e.PORT,
    host: e.HOST,
    mongodbUri: e.MONGODB_URI,
    mongodbDb: e.MONGODB_DB,
    logLevel: e.LOG_LEVEL,
    auth,
    usageLeaseMs: e.USAGE_LEASE_SECONDS * 1000,
    retentionDays: e.RETENTION_DAYS,
    mongodbServerSelectionTimeoutMs: e.MONGODB_SERVER_SELECTION_TIMEOUT_MS,
    shutdownGraceMs: Math.round(e.SHUTDOWN_GRACE_SECONDS * 1000),
    liveFeed: e.LIVE_FEED,
    limits: {
      maxBodyBytes: e.LIMIT_MAX_BODY_BYTES,
      maxTokens: e.LIMIT_MAX_TOKENS,
      maxDepth: e.LIMIT_MAX_DEPTH,
      maxAliases: e.LIMIT_MAX_ALIASES,
      maxDirectives: e.LIMIT_MAX_DIRECTIVES,
      maxCost: e.LIMIT_MAX_COST,
      maxEntities: e.LIMIT_MAX_ENTITIES,
      maxChecks: e.LIMIT_MAX_CHECKS,
      maxBatchEvents: e.LIMIT_MAX_BATCH_EVENTS,
    },
    wsMaxSubscriptionsPerConnection: e.WS_MAX_SUBSCRIPTIONS_PER_CONNECTION,
    webhooks: {
      allowPrivate: e.WEBHOOKS_ALLOW_PRIVATE === 'true',
      retryBaseMs: Math.round(e.WEBHOOKS_RETRY_BASE_SECONDS * 1000),
      concurrencyPerEndpoint: e.WEBHOOKS_CONCURRENCY_PER_ENDPOINT,
      timeoutMs: Math.round(e.WEBHOOKS_TIMEOUT_SECONDS * 1000),
    },
    stripe: { apiKey: e.STRIPE_API_KEY, apiBase: e.STRIPE_API_BASE, syncOnFinalize: e.STRIPE_SYNC_ON_FINALIZE === 'true' },
    segmentEvents: JSON.parse(e.SEGMENT_EVENTS) as Record<string, string>,
    trialSweepMs: Math.round(e.TRIAL_SWEEP_SECONDS * 1000),
    termsCache: { maxEntries: e.TERMS_CACHE_MAX_ENTRIES, maxStalenessMs: e.TERMS_CACHE_STALENESS_MS },
  };
}
