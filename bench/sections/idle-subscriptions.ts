/**
 * Issue 19: memory per idle subscription. A separate Allotment process (so the clients'
 * own memory is not counted), run as `npm run start:prod` runs it, holds idle
 * `usageAlerts` subscriptions over 20 sockets. After a warm-up tranche (the first
 * subscriptions also pay once for compiled code, the sockets and the heap's first growth),
 * 10,000 more are added; the figure is their marginal cost.
 *
 * Memory is read after a full garbage collection, requested over the child's inspector
 * (`HeapProfiler.collectGarbage`): without it the JS heap in use still holds whatever the
 * subscribe messages left behind, and RSS whatever young generation the process grew
 * meanwhile, so both figures moved by half from run to run and with the baseline's size.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import type { Client } from 'graphql-ws';
import WebSocket from 'ws';
import { REPO_ROOT, RUNNING_COMPILED, type BenchContext, type BenchSection } from '../harness.js';
import { ALERTS, wsClient } from './alerts.js';

const IDLE_SUBSCRIPTIONS = 10_000;
/** Subscribed before the measured ones. */
const WARMUP_SUBSCRIPTIONS = 2_000;
const IDLE_SOCKETS = 20;

export const idleSubscriptionsSection: BenchSection = {
  name: 'idle-subscriptions',
  description: 'memory of a separate Allotment process per idle subscription (after a full GC)',
  run: (context) => measureIdleMemory(context),
};

interface Memory {
  heapMb: number;
  externalMb: number;
  rssMb: number;
}

async function measureIdleMemory(context: BenchContext): Promise<void> {
  const [port, inspectPort] = [await freePort(), await freePort()];
  const server = await spawnAllotment(context, port, inspectPort);
  const base = `http://127.0.0.1:${port}`;
  const clients: Client[] = [];
  const settled = async (): Promise<Memory> => {
    await sleep(1_000);
    await collectGarbage(inspectPort);
    return {
      heapMb: (await metric(base, 'allotment_nodejs_heap_size_used_bytes')) / 2 ** 20,
      externalMb: (await metric(base, 'allotment_nodejs_external_memory_bytes')) / 2 ** 20,
      rssMb: (await metric(base, 'allotment_process_resident_memory_bytes')) / 2 ** 20,
    };
  };
  try {
    const idle = await settled();
    for (let s = 0; s < IDLE_SOCKETS; s++) clients.push(wsClient(`${base}/graphql`));
    let subscribed = 0;
    const hold = async (count: number): Promise<Memory> => {
      for (let i = subscribed; i < subscribed + count; i++) {
        clients[i % IDLE_SOCKETS]!.subscribe(
          { query: ALERTS, variables: { accountId: `acct_idle_${i}` } },
          { next: () => undefined, error: () => undefined, complete: () => undefined },
        );
      }
      subscribed += count;
      await until(async () => (await metric(base, 'allotment_active_subscriptions')) >= subscribed, 60_000, 'all idle subscriptions');
      return settled();
    };
    const warm = await hold(WARMUP_SUBSCRIPTIONS);
    const held = await hold(IDLE_SUBSCRIPTIONS);
    const kb = (from: number, to: number) => ((to - from) * 1024) / IDLE_SUBSCRIPTIONS;
    const retained = kb(warm.heapMb + warm.externalMb, held.heapMb + held.externalMb);
    const fmt = (memory: Memory) =>
      `heap ${memory.heapMb.toFixed(1)} MB + external ${memory.externalMb.toFixed(1)} MB, RSS ${memory.rssMb.toFixed(0)} MB`;
    context.report(`idle server:                 ${fmt(idle)}`);
    context.report(`${WARMUP_SUBSCRIPTIONS.toLocaleString('en-US')} idle subscriptions:    ${fmt(warm)}`);
    context.report(`${(WARMUP_SUBSCRIPTIONS + IDLE_SUBSCRIPTIONS).toLocaleString('en-US')} idle subscriptions:   ${fmt(held)}`);
    context.target({
      name: 'idle subscription memory',
      figure: `${retained.toFixed(1)} KB each retained after a full GC (JS heap + external, ${IDLE_SUBSCRIPTIONS} added over ${IDLE_SOCKETS} sockets after ${WARMUP_SUBSCRIPTIONS})`,
      baseline: `RSS ${kb(warm.rssMb, held.rssMb).toFixed(1)} KB each over the same step (allocator slack included)`,
      ratio: '',
      target: '≤ 5 KB',
      met: retained <= 5,
    });
    await Promise.all(clients.splice(0).map((client) => client.dispose()));
    await until(async () => (await metric(base, 'allotment_active_subscriptions')) === 0, 10_000, 'subscriptions released');
    context.report('after closing the sockets: 0 active subscriptions');
  } finally {
    await Promise.all(clients.map((client) => client.dispose()));
    await stopChild(server);
  }
}

/** A full collection in the child, through its inspector (Chrome DevTools Protocol). */
async function collectGarbage(inspectPort: number): Promise<void> {
  const [target] = (await (await fetch(`http://127.0.0.1:${inspectPort}/json/list`)).json()) as Array<{ webSocketDebuggerUrl: string }>;
  if (!target) throw new Error('the child process has no inspector target');
  const socket = new WebSocket(target.webSocketDebuggerUrl);
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  try {
    for (const id of [1, 2]) {
      await new Promise<void>((resolve, reject) => {
        const onMessage = (data: WebSocket.RawData) => {
          const message = JSON.parse(String(data)) as { id?: number; error?: { message: string } };
          if (message.id !== id) return;
          socket.off('message', onMessage);
          if (message.error) reject(new Error(message.error.message));
          else resolve();
        };
        socket.on('message', onMessage);
        socket.send(JSON.stringify({ id, method: 'HeapProfiler.collectGarbage' }));
      });
    }
  } finally {
    socket.close();
  }
}

async function spawnAllotment(context: BenchContext, port: number, inspectPort: number): Promise<ChildProcess> {
  // As `npm run start:prod` runs it (or `npm start` when the bench itself runs under tsx).
  const entry = RUNNING_COMPILED ? ['dist/src/main.js'] : ['--import', 'tsx', 'src/main.ts'];
  const child = spawn(process.execPath, ['--max-semi-space-size=16', `--inspect=127.0.0.1:${inspectPort}`, ...entry], {
    cwd: REPO_ROOT,
    env: {
      ...process.env,
      NODE_ENV: 'development',
      PORT: String(port),
      MONGODB_URI: context.database.uri,
      MONGODB_DB: `${context.dbName}_idle`,
      LOG_LEVEL: 'error',
    },
    stdio: ['ignore', 'ignore', 'ignore'],
  });
  await until(
    async () =>
      await fetch(`http://127.0.0.1:${port}/readyz`).then(
        (r) => r.ok,
        () => false,
      ),
    30_000,
    'the Allotment process to be ready',
  );
  return child;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await Promise.race([exited, sleep(10_000).then(() => child.kill('SIGKILL'))]);
}

async function metric(base: string, name: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const line = text.split('\n').find((entry) => entry.startsWith(`${name} `));
  return line ? Number(line.split(' ')[1]) : NaN;
}

async function until(condition: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(100);
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
