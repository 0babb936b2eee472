/**
 * `npm run stack`: the whole federated stack on this machine, in one command
 * (docs/stack.md). It composes the supergraph (what `npm run supergraph` writes), then
 * starts, in order:
 *
 * 1. the embedded database (src/dev/embedded-db.ts), in this process;
 * 2. Allotment (`src/main.ts`), auth on, with a development signing secret;
 * 3. the reference accounts subgraph (docker/accounts-subgraph/server.mjs);
 * 4. Hive Gateway, the `hive-gateway` CLI from npm with gateway.config.ts;
 * 5. the customer dashboard (examples/dashboard, Vite), unless STACK_DASHBOARD=0.
 *
 * Everything binds 127.0.0.1. It prints the gateway URL and ready-made tokens. The first
 * Ctrl-C / SIGTERM stops the dashboard, the gateway, the accounts subgraph and Allotment
 * (SIGTERM each, then wait for it), then the database, and exits 0. If a part dies on its
 * own, the rest is stopped and the exit code is 1.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { SignJWT } from 'jose';
import { createLogger } from '../src/logger.js';
import { resolveDatabase, type ResolvedDatabase } from '../src/dev/embedded-db.js';
import { composeWithApollo, localStackSubgraphs, SUPERGRAPH_PATH } from './compose-supergraph.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const HOST = '127.0.0.1';
const port = (name: string, fallback: number): number => Number(process.env[name] ?? fallback);
const ports = {
  gateway: port('GATEWAY_PORT', 4000),
  allotment: port('ALLOTMENT_PORT', 4001),
  accounts: port('ACCOUNTS_PORT', 4010),
  dashboard: port('DASHBOARD_PORT', 5173),
};
const secret = process.env.AUTH_JWT_SECRET ?? randomBytes(32).toString('hex');
const logger = createLogger(process.env.STACK_LOG_LEVEL ?? 'info');

interface Part {
  name: string;
  child: ChildProcess;
  exited: Promise<number | null>;
}
const parts: Part[] = [];
let database: ResolvedDatabase | undefined;
let stopDashboard: (() => Promise<void>) | undefined;
let stopping = false;

function startPart(name: string, args: string[], env: Record<string, string>): Part {
  const child = spawn(process.execPath, args, { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const prefix = (line: string) => `[${name}] ${line}\n`;
  for (const stream of [child.stdout, child.stderr]) {
    let buffered = '';
    stream?.setEncoding('utf8');
    stream?.on('data', (chunk: string) => {
      buffered += chunk;
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) if (line.trim()) process.stderr.write(prefix(line));
    });
  }
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const part = { name, child, exited };
  void exited.then((code) => {
    if (!stopping) {
      logger.error({ part: name, code }, 'a part of the stack exited on its own; stopping the rest');
      void stop(1);
    }
  });
  parts.push(part);
  return part;
}

async function waitForHttp(name: string, url: string, init: RequestInit = {}, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (stopping) throw new Error('stopping');
    try {
      const response = await fetch(url, { ...init, signal: AbortSignal.timeout(2_000) });
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`${name} did not become ready at ${url} within ${timeoutMs / 1000} s`);
}

async function stop(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  logger.info('stopping the stack');
  await stopDashboard?.().catch(() => undefined);
  for (const part of [...parts].reverse()) {
    if (part.child.exitCode === null && part.child.signalCode === null) part.child.kill('SIGTERM');
    const timeout = setTimeout(() => part.child.kill('SIGKILL'), 20_000);
    const exitCode = await part.exited;
    clearTimeout(timeout);
    logger.info({ part: part.name, code: exitCode ?? part.child.signalCode }, 'stopped');
  }
  if (database) {
    await database.stop().catch((err: unknown) => logger.error({ err }, 'stopping the database failed'));
    // An embedded engine's process is ours to reap: wait for it, so nothing outlives the stack.
    if (database.engine !== 'external') await Promise.race([database.exited, new Promise((resolve) => setTimeout(resolve, 10_000))]);
  }
  logger.info({ code }, 'stack stopped');
  process.exit(code);
}

async function sign(claims: Record<string, string>, subject: string): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(subject)
    .setIssuedAt()
    .setExpirationTime('12h')
    .sign(new TextEncoder().encode(secret));
}

async function main(): Promise<void> {
  process.on('SIGINT', () => void stop(0));
  process.on('SIGTERM', () => void stop(0));

  mkdirSync(new URL('../docker/router/', import.meta.url), { recursive: true });
  writeFileSync(SUPERGRAPH_PATH, `${composeWithApollo(localStackSubgraphs()).trimEnd()}\n`);

  database = await resolveDatabase({ uri: process.env.MONGODB_URI, logger, port: port('DB_PORT', 0) });
  logger.info({ engine: database.engine, uri: database.uri }, 'database ready');

  const allotmentUrl = `http://${HOST}:${ports.allotment}/graphql`;
  const accountsUrl = `http://${HOST}:${ports.accounts}/graphql`;
  startPart('allotment', ['--max-semi-space-size=16', '--import', 'tsx', 'src/main.ts'], {
    PORT: String(ports.allotment),
    HOST,
    MONGODB_URI: database.uri,
    AUTH_JWT_SECRET: secret,
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
  });
  startPart('accounts', ['docker/accounts-subgraph/server.mjs'], { PORT: String(ports.accounts), HOST });
  await waitForHttp('allotment', `http://${HOST}:${ports.allotment}/readyz`);
  await waitForHttp('accounts', `${accountsUrl}?query=%7B__typename%7D`, { headers: { 'apollo-require-preflight': 'true' } });

  const otlp = process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
  startPart(
    'gateway',
    [
      'node_modules/@graphql-hive/gateway/dist/bin.js',
      'supergraph',
      SUPERGRAPH_PATH,
      '--config-path',
      'gateway.config.ts',
      '--host',
      HOST,
      '--port',
      String(ports.gateway),
      ...(otlp ? ['--opentelemetry', `${otlp.replace(/\/$/, '')}/v1/traces`] : []),
    ],
    { ALLOTMENT_URL: allotmentUrl, ACCOUNTS_URL: accountsUrl },
  );
  const gatewayUrl = `http://${HOST}:${ports.gateway}/graphql`;
  await waitForHttp('gateway', `http://${HOST}:${ports.gateway}/readiness`);

  let dashboardUrl: string | undefined;
  if (process.env.STACK_DASHBOARD !== '0') {
    const { startDashboard } = await import('../examples/dashboard/serve.js');
    const dashboard = await startDashboard({ host: HOST, port: ports.dashboard, gatewayUrl });
    stopDashboard = dashboard.close;
    dashboardUrl = dashboard.url;
  }

  const tokens = {
    operator: await sign(
      { scope: 'entitlements:read usage:write grants:write catalog:write contracts:write audit:read usage:reconcile' },
      'stack-operator',
    ),
    support: await sign({ scope: 'entitlements:read grants:write audit:read' }, 'stack-support'),
    customer: await sign({ scope: 'entitlements:read', account_id: 'acct_1001' }, 'stack-customer-acct_1001'),
  };
  const summary = { gatewayUrl, gatewayWsUrl: gatewayUrl.replace('http', 'ws'), dashboardUrl, allotmentUrl, accountsUrl, tokens };
  if (process.env.STACK_INFO_FILE) writeFileSync(process.env.STACK_INFO_FILE, JSON.stringify(summary, null, 2));
  process.stdout.write(
    [
      '',
      `Gateway:    ${gatewayUrl}  (graphql-ws on ${summary.gatewayWsUrl})`,
      ...(dashboardUrl ? [`Dashboard:  ${dashboardUrl}  (internal grants page: ${dashboardUrl}grants.html)`] : []),
      `Allotment:  ${allotmentUrl}    Accounts: ${accountsUrl}    Database: ${database.uri} (${database.engine})`,
      '',
      'Tokens (HS256, 12 h; AUTH_JWT_SECRET is random per run unless you set it):',
      `  export TOKEN=${tokens.operator}`,
      `  export SUPPORT_TOKEN=${tokens.support}`,
      `  export CUSTOMER_TOKEN=${tokens.customer}   # acct_1001 only`,
      '',
      `Try: curl -s ${gatewayUrl} -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \\`,
      `       -d '{"query":"{ account(id: \\"acct_1001\\") { name contracts { id } } }"}'`,
      'Ctrl-C stops everything.',
      '',
    ].join('\n'),
  );
}

main().catch((error: unknown) => {
  logger.error({ err: error }, 'the stack failed to start');
  void stop(1);
});
