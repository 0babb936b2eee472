import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApolloServer } from '@apollo/server';
import { startStandaloneServer } from '@apollo/server/standalone';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { createGatewayRuntime, type GatewayConfig, getGraphQLWSOptions, type GatewayRuntime } from '@graphql-hive/gateway-runtime';
import { composeServices } from '@theguild/federation-composition';
import { parse } from 'graphql';
import { useServer, type Extra } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';
// @ts-expect-error plain JS module of the reference subgraph, shared with docker/
import { resolvers as accountsResolvers } from '../../docker/accounts-subgraph/resolvers.mjs';
import { readSchemaSdl } from '../../src/server/schema.js';

export const ACCOUNTS_SDL = readFileSync(new URL('../../docker/accounts-subgraph/schema.graphql', import.meta.url), 'utf8');

/** The reference accounts subgraph from docker/, served in-process on a free port. */
export async function startAccountsSubgraph(): Promise<{ url: string; stop(): Promise<void> }> {
  const server = new ApolloServer({ schema: buildSubgraphSchema([{ typeDefs: parse(ACCOUNTS_SDL), resolvers: accountsResolvers }]) });
  const { url } = await startStandaloneServer(server, { listen: { port: 0, host: '127.0.0.1' } });
  return { url, stop: () => server.stop() };
}

export function composeSupergraph(subgraphs: { name: string; sdl: string; url: string }[]): string {
  const result = composeServices(subgraphs.map(({ name, sdl, url }) => ({ name, typeDefs: parse(sdl), url })));
  if (result.errors?.length) {
    throw new Error(`Composition failed:\n${result.errors.map((error) => error.message).join('\n')}`);
  }
  return result.supergraphSdl!;
}

/**
 * A real Hive Gateway runtime, in-process, over a static supergraph composed from our
 * schema.graphql and the accounts subgraph. It forwards the caller's Authorization header
 * over HTTP, and runs Allotment's subscriptions over graphql-ws with the client's
 * `connectionParams.authorization` passed on as the subgraph connection's own.
 *
 * `subscriptions: 'http'` leaves Allotment's transport at Hive Gateway's default instead:
 * subscriptions go over HTTP too (GET with `accept: text/event-stream`, i.e. GraphQL over
 * SSE), with the Authorization header propagated like any other request.
 */
export async function startGateway(options: {
  allotmentUrl: string;
  accountsUrl: string;
  subscriptions?: 'ws' | 'http';
  /** Extra gateway plugins, e.g. Hive's OpenTelemetry plugin in the trace test. */
  plugins?: GatewayConfig['plugins'];
}) {
  const supergraph = composeSupergraph([
    { name: 'allotment', sdl: readSchemaSdl(), url: options.allotmentUrl },
    { name: 'accounts', sdl: ACCOUNTS_SDL, url: options.accountsUrl },
  ]);
  const gateway = createGatewayRuntime({
    supergraph,
    logging: false,
    ...(options.plugins ? { plugins: options.plugins } : {}),
    propagateHeaders: {
      // A client on graphql-ws has no request headers: its token is in connectionParams.
      fromClientToSubgraphs: ({ request, context }) => ({
        authorization:
          request.headers.get('authorization') ??
          ((context as { connectionParams?: Record<string, unknown> }).connectionParams?.authorization as string | undefined) ??
          undefined,
      }),
    },
    transportEntries:
      options.subscriptions === 'http'
        ? {
            // Transport kind left at its default (HTTP, so subscriptions over SSE). propagateHeaders
            // only sees HTTP clients; a graphql-ws client's token is in `context.headers` (Hive
            // Gateway merges connectionParams into it), so it is forwarded from there.
            allotment: { headers: [['authorization', '{context.headers.authorization}']] },
          }
        : {
            allotment: {
              options: {
                subscriptions: {
                  kind: 'ws',
                  location: '/graphql',
                  options: { connectionParams: { authorization: '{context.connectionParams.authorization}' } },
                },
              },
            },
          },
  });
  return {
    supergraph,
    gateway,
    async query(query: string, variables: Record<string, unknown> = {}, token?: string) {
      const response = await gateway.fetch('http://gateway.local/graphql', {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
        body: JSON.stringify({ query, variables }),
      });
      return (await response.json()) as { data?: any; errors?: Array<{ message: string; extensions?: Record<string, unknown> }> };
    },
    stop: () => gateway.dispose(),
  };
}

/**
 * Serves a gateway runtime on a free port like a deployed gateway: HTTP through the
 * runtime, and graphql-ws on the same path with the runtime's own execute/subscribe.
 */
export async function serveGateway(gateway: GatewayRuntime<Record<string, any>>) {
  await gateway.getSchema(); // the supergraph must be loaded before sockets arrive
  const server = createServer(gateway);
  const wss = new WebSocketServer({ server, path: gateway.graphqlEndpoint });
  const disposable = useServer(
    getGraphQLWSOptions<Record<string, any>, Extra>(gateway, (ctx) => ({ req: ctx.extra.request, socket: ctx.extra.socket })),
    wss,
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}${gateway.graphqlEndpoint}`,
    wsUrl: `ws://127.0.0.1:${port}${gateway.graphqlEndpoint}`,
    async close() {
      for (const client of wss.clients) client.terminate();
      await disposable.dispose();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
