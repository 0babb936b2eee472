/**
 * Serves the customer dashboard and the internal grants page with Vite's dev server.
 * `/graphql` (HTTP and graphql-ws) is proxied to the gateway, so the pages talk to the
 * federated graph from their own origin and need no CORS grant.
 */
import { fileURLToPath } from 'node:url';
import { createServer } from 'vite';

export async function startDashboard(options: { host: string; port: number; gatewayUrl: string }) {
  const root = fileURLToPath(new URL('.', import.meta.url));
  const gateway = new URL(options.gatewayUrl);
  const server = await createServer({
    root,
    configFile: false,
    logLevel: 'warn',
    clearScreen: false,
    server: {
      host: options.host,
      port: options.port,
      strictPort: true,
      proxy: { '/graphql': { target: gateway.origin, ws: true, changeOrigin: true } },
    },
    // The two pages are plain HTML entry points; graphql-ws is the only dependency to bundle.
    optimizeDeps: { include: ['graphql-ws'] },
  });
  await server.listen();
  return { url: `http://${options.host}:${options.port}/`, close: () => server.close() };
}
