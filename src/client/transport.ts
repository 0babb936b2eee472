/**
 * One GraphQL request over HTTP with retries: network failures, HTTP 502/503/504 and
 * `SERVICE_UNAVAILABLE` results are retried with exponential backoff and full jitter
 * (honouring `Retry-After`); every other error, `BAD_USER_INPUT` first of all, is thrown
 * at once. A mutation is retried only with its idempotency key already fixed, which the
 * client guarantees, so a retry can never count usage twice.
 */

export interface RetryOptions {
  /** Attempts in all, the first included (default 5). */
  attempts?: number;
  /** Backoff base (default 100 ms): the n-th retry waits up to base · 2^(n−1). */
  baseDelayMs?: number;
  /** Longest single wait (default 5 s). */
  maxDelayMs?: number;
}

export interface TransportOptions {
  /** The gateway's or Allotment's GraphQL endpoint. */
  url: string;
  /** A bearer token, or a function returning the current one (called per attempt). */
  token?: string | (() => string | Promise<string>);
  retry?: RetryOptions;
  /** Per-attempt timeout (default 10 s). */
  timeoutMs?: number;
  fetch?: typeof fetch;
  /** Called before each retry, for logs and metrics. */
  onRetry?: (info: { attempt: number; delayMs: number; error: AllotmentError }) => void;
}

export interface GraphQLErrorShape {
  message: string;
  path?: ReadonlyArray<string | number>;
  extensions?: { code?: string } & Record<string, unknown>;
}

const RETRYABLE_CODES = new Set(['SERVICE_UNAVAILABLE']);
const RETRYABLE_STATUS = new Set([502, 503, 504]);

/** A failed request: `code` is the first error's `extensions.code` (or NETWORK_ERROR / HTTP_<status>). */
export class AllotmentError extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly retryable: boolean,
    readonly errors: GraphQLErrorShape[] = [],
    readonly status?: number,
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'AllotmentError';
  }
}

function retryAfter(header: string | null): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  return Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : undefined;
}

export function createTransport(options: TransportOptions) {
  const attempts = Math.max(1, options.retry?.attempts ?? 5);
  const baseDelayMs = options.retry?.baseDelayMs ?? 100;
  const maxDelayMs = options.retry?.maxDelayMs ?? 5_000;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const doFetch = options.fetch ?? fetch;

  async function attempt<T>(query: string, variables: Record<string, unknown>): Promise<T> {
    const token = typeof options.token === 'function' ? await options.token() : options.token;
    let response: Response;
    try {
      response = await doFetch(options.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
        body: JSON.stringify({ query, variables }),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (error) {
      throw new AllotmentError(`network error: ${(error as Error).message}`, 'NETWORK_ERROR', true);
    }
    let body: { data?: T | null; errors?: GraphQLErrorShape[] } | undefined;
    try {
      body = (await response.json()) as typeof body;
    } catch {
      body = undefined;
    }
    const errors = body?.errors ?? [];
    const wait = retryAfter(response.headers.get('retry-after'));
    if (errors.length > 0) {
      const code = errors[0]?.extensions?.code ?? `HTTP_${response.status}`;
      const retryable = errors.every((error) => RETRYABLE_CODES.has(error.extensions?.code ?? '')) || RETRYABLE_STATUS.has(response.status);
      throw new AllotmentError(errors.map((error) => error.message).join('; '), code, retryable, errors, response.status, wait);
    }
    if (!response.ok || !body?.data) {
      throw new AllotmentError(
        `HTTP ${response.status} without data`,
        `HTTP_${response.status}`,
        RETRYABLE_STATUS.has(response.status),
        [],
        response.status,
        wait,
      );
    }
    return body.data;
  }

  return async function request<T>(query: string, variables: Record<string, unknown>): Promise<T> {
    for (let n = 1; ; n++) {
      try {
        return await attempt<T>(query, variables);
      } catch (error) {
        const failure = error as AllotmentError;
        if (!failure.retryable || n >= attempts) throw failure;
        const backoff = Math.random() * Math.min(maxDelayMs, baseDelayMs * 2 ** (n - 1));
        const delayMs = Math.min(maxDelayMs, Math.max(backoff, failure.retryAfterMs ?? 0));
        options.onRetry?.({ attempt: n, delayMs, error: failure });
        await new Promise((resolve) => setTimeout(resolve, delayMs));
      }
    }
  };
}
