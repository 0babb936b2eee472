/**
 * The pages' GraphQL: queries and mutations with fetch, subscriptions with a graphql-ws
 * client, all through the gateway at `/graphql` on the page's own origin (the dev server
 * proxies it, WebSocket included).
 */
import { type Client, createClient } from 'graphql-ws';

export interface GraphQLFailure {
  message: string;
  extensions?: { code?: string };
}

export class RequestError extends Error {
  constructor(readonly errors: GraphQLFailure[]) {
    super(errors.map((error) => `${error.extensions?.code ?? 'ERROR'}: ${error.message}`).join('\n'));
  }
}

export async function request<T>(token: string, query: string, variables: Record<string, unknown> = {}): Promise<T> {
  const response = await fetch('/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data?: T; errors?: GraphQLFailure[] };
  if (body.errors?.length) throw new RequestError(body.errors);
  return body.data as T;
}

export function liveClient(token: string): Client {
  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/graphql`;
  // A function, so a reconnect sends the token the page holds then.
  return createClient({ url, connectionParams: () => ({ authorization: `Bearer ${token}` }), lazy: true, retryAttempts: 5 });
}

/** The claims of a JWT, read without verifying it: the server verifies, the page only needs the account. */
export function claims(token: string): Record<string, unknown> {
  const payload = token.split('.')[1] ?? '';
  try {
    return JSON.parse(atob(payload.replace(/-/g, '+').replace(/_/g, '/'))) as Record<string, unknown>;
  } catch {
    return {};
  }
}

export function show(element: HTMLElement, text: string | null): void {
  element.textContent = text ?? '';
  element.hidden = !text;
}
