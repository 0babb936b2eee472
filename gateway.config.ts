/**
 * Hive Gateway configuration for the local stack (`npm run stack`, docs/stack.md). The
 * `hive-gateway` CLI loads it with the supergraph that `npm run supergraph` writes
 * (docker/router/supergraph.graphql, whose routing URLs are the compose service names);
 * `location` below points each subgraph at the stack's own processes instead.
 *
 * - HTTP clients: `authorization` is forwarded to every subgraph as it came.
 * - graphql-ws clients have no request headers: their token is in `connectionParams`, and
 *   is forwarded both on HTTP fetches made for them and as the connectionParams of the
 *   gateway's own graphql-ws connection to Allotment, which runs the subscriptions.
 */
import { defineConfig } from '@graphql-hive/gateway';

const allotmentUrl = process.env.ALLOTMENT_URL ?? 'http://127.0.0.1:4001/graphql';
const accountsUrl = process.env.ACCOUNTS_URL ?? 'http://127.0.0.1:4010/graphql';

type WithConnectionParams = { connectionParams?: Record<string, unknown> };

export const gatewayConfig = defineConfig({
  propagateHeaders: {
    fromClientToSubgraphs: ({ request, context }) => {
      const fromSocket = (context as WithConnectionParams).connectionParams?.authorization;
      const authorization = request.headers.get('authorization') ?? (typeof fromSocket === 'string' ? fromSocket : undefined);
      const requestId = request.headers.get('x-request-id') ?? undefined;
      return { ...(authorization ? { authorization } : {}), ...(requestId ? { 'x-request-id': requestId } : {}) };
    },
  },
  transportEntries: {
    allotment: {
      location: allotmentUrl,
      options: {
        subscriptions: {
          kind: 'ws',
          location: '/graphql',
          options: { connectionParams: { authorization: '{context.connectionParams.authorization}' } },
        },
      },
    },
    accounts: { location: accountsUrl },
  },
  // Subgraph errors carry extensions.code (BAD_USER_INPUT, FORBIDDEN, …): pass them through.
  maskedErrors: false,
});
