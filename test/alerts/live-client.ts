import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';

/** A real graphql-ws client on `url`, authenticated like a dashboard (connectionParams). */
export function liveClient(url: string, token: string | undefined): Client {
  return createClient({
    url,
    webSocketImpl: WebSocket,
    connectionParams: token ? { authorization: `Bearer ${token}` } : undefined,
    retryAttempts: 0,
    lazy: true,
  });
}

export interface Collected<T> {
  events: T[];
  errors: unknown[];
  /** Result payloads that carried GraphQL errors (e.g. FORBIDDEN at subscribe time). */
  errorPayloads: Array<{ errors: Array<{ message: string; extensions?: Record<string, unknown> }> }>;
  completed: boolean;
  stop(): void;
}

/** Subscribes and records every payload's `data[field]`, errors apart. */
export function collect<T = any>(client: Client, query: string, variables: Record<string, unknown>, field: string): Collected<T> {
  const collected: Collected<T> = { events: [], errors: [], errorPayloads: [], completed: false, stop: () => undefined };
  collected.stop = client.subscribe<Record<string, T>>(
    { query, variables },
    {
      next: (result) => {
        if (result.errors) collected.errorPayloads.push(result as Collected<T>['errorPayloads'][number]);
        else if (result.data) collected.events.push(result.data[field]!);
      },
      error: (error) => collected.errors.push(error),
      complete: () => (collected.completed = true),
    },
  );
  return collected;
}

/** Polls `condition` every 5 ms until it holds, failing after `timeoutMs` (generous: CI machines are noisy, and a wait that holds early ends early). */
export async function waitFor(condition: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Lets in-flight deliveries land, for asserting that nothing more arrives. */
export const settle = (ms = 300) => new Promise((resolve) => setTimeout(resolve, ms));

export const USAGE_ALERTS = /* GraphQL */ `
  subscription Alerts($accountId: ID!, $features: [ID!]) {
    usageAlerts(accountId: $accountId, features: $features) {
      id accountId feature threshold used capacity percentUsed periodStart periodEnd triggeredAt
    }
  }
`;
