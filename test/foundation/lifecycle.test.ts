/**
 * Stop and start of the real processes (`npm start`, `npm run db`), spawned as children:
 * signals, exit codes and timings are things an in-process test cannot see.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, inject, it } from 'vitest';
import WebSocket from 'ws';
import { signToken, TEST_JWT_SECRET, uniqueDbName } from '../support/harness.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

interface Spawned {
  child: ChildProcess;
  /** Parsed JSON log lines (pino) and raw other lines, in order. */
  lines: Array<Record<string, any> | string>;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  /** Resolves with the first log line the predicate accepts. */
  waitFor(predicate: (line: Record<string, any> | string) => boolean, timeoutMs?: number): Promise<Record<string, any> | string>;
}

const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
});

function spawnTsx(script: string, env: Record<string, string>): Spawned {
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  const lines: Spawned['lines'] = [];
  const waiters: Array<{
    predicate: (line: Record<string, any> | string) => boolean;
    resolve: (line: Record<string, any> | string) => void;
  }> = [];
  const onLine = (raw: string): void => {
    if (!raw.trim()) return;
    let line: Record<string, any> | string = raw;
    try {
      line = JSON.parse(raw) as Record<string, any>;
    } catch {
      // not a log line
    }
    lines.push(line);
    for (const waiter of [...waiters]) {
      if (waiter.predicate(line)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(line);
      }
    }
  };
  for (const stream of [child.stdout!, child.stderr!]) {
    let buffer = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      buffer += chunk;
      for (let newline = buffer.indexOf('\n'); newline >= 0; newline = buffer.indexOf('\n')) {
        onLine(buffer.slice(0, newline));
        buffer = buffer.slice(newline + 1);
      }
    });
  }
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal, at: Date.now() }));
  });
  return {
    child,
    lines,
    exit,
    waitFor(predicate, timeoutMs = 30_000) {
      const seen = lines.find(predicate);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () =>
            reject(
              new Error(
                `no matching line within ${timeoutMs} ms:\n${lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n')}`,
              ),
            ),
          timeoutMs,
        );
        waiters.push({
          predicate,
          resolve: (line) => {
            clearTimeout(timer);
            resolve(line);
          },
        });
        void exit.then(({ code, signal }) => {
          clearTimeout(timer);
          reject(
            new Error(
              `process exited (${signal ?? code}) before a matching line:\n${lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n')}`,
            ),
          );
        });
      });
    },
  };
}

const msg = (text: string) => (line: Record<string, any> | string) => typeof line === 'object' && line.msg === text;
const count = (spawned: Spawned, text: string) => spawned.lines.filter(msg(text)).length;

/** `npm start` as production runs it: real signals, Apollo's signal defaults (NODE_ENV is not `test`). */
async function startService(): Promise<{ service: Spawned; url: string; base: string }> {
  const service = spawnTsx('src/main.ts', {
    NODE_ENV: 'production',
    MONGODB_URI: inject('mongoUri'),
    MONGODB_DB: uniqueDbName('life'),
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'info',
    AUTH_JWT_SECRET: TEST_JWT_SECRET,
  });
  const listening = (await service.waitFor(msg('Allotment subgraph listening (HTTP and graphql-ws)'))) as { url: string };
  return { service, url: listening.url, base: listening.url.replace(/\/graphql$/, '') };
}

describe('npm start: SIGTERM stops once, drains, exits 0 within a few seconds', () => {
  it('stops idle with an open keep-alive connection and an open WebSocket in well under 5 s', async () => {
    const { service, url, base } = await startService();
    const token = await signToken();
    // A keep-alive HTTP connection left idle, as a gateway leaves its pool.
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    // A graphql-ws connection, acknowledged.
    const socket = new WebSocket(url.replace(/^http/, 'ws'), 'graphql-transport-ws');
    const closed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.once('open', () => socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } })));
      socket.on('message', (data) => {
        if (JSON.parse(String(data)).type === 'connection_ack') resolve();
      });
    });

    const signalledAt = Date.now();
    service.child.kill('SIGTERM');
    const { code, signal, at } = await service.exit;
    const elapsed = at - signalledAt;
    console.info(`idle stop: exit ${code} after ${elapsed} ms`);
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    expect(elapsed).toBeLessThan(5_000);
    expect(await closed).toBe(1001);
    expect(count(service, 'Allotment stopped')).toBe(1);
    expect(service.lines.filter((line) => typeof line === 'object' && line.level >= 50)).toEqual([]);
  });

  it('lets an in-flight request finish, ignores a second signal, refuses new connections, exits 0', async () => {
    const { service, url, base } = await startService();
    const token = await signToken();
    const body = JSON.stringify({ query: '{ _service { sdl } }' });
    const half = Math.floor(body.length / 2);
    // The request is on the server (headers parsed, handler running) but its body is not complete yet.
    const response = new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = request(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: `Bearer ${token}` },
      });
      req.on('response', (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      });
      req.on('error', reject);
      req.write(body.slice(0, half));
      setTimeout(() => {
        service.child.kill('SIGTERM');
        setTimeout(() => service.child.kill('SIGINT'), 150);
        setTimeout(() => req.end(body.slice(half)), 600);
      }, 300);
    });
    const signalledAt = Date.now() + 300;

    await service.waitFor(msg('already stopping; signal ignored'), 5_000);
    // Draining: the port no longer accepts connections.
    await expect(fetch(`${base}/healthz`)).rejects.toThrow();

    const answered = await response;
    expect(answered.status).toBe(200);
    expect(JSON.parse(answered.text).data._service.sdl).toContain('type Account');

    const { code, signal, at } = await service.exit;
    const elapsed = at - signalledAt;
    console.info(`stop with an in-flight request: exit ${code} after ${elapsed} ms`);
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    expect(elapsed).toBeLessThan(5_000);
    expect(count(service, 'shutting down: draining HTTP and WebSocket, then workers and database clients')).toBe(1);
    expect(count(service, 'Allotment stopped')).toBe(1);
    expect(service.lines.filter((line) => typeof line === 'object' && line.level >= 50)).toEqual([]);
  });
});

describe('npm run db', () => {
  it('exits non-zero promptly when its Java process dies', async () => {
    const db = spawnTsx('src/dev/db-main.ts', { ALLOTMENT_EMBEDDED_ENGINE: 'mongo-java-server', DB_PORT: '0', LOG_LEVEL: 'info' });
    await db.waitFor((line) => typeof line === 'string' && line.startsWith('MONGODB_URI=mongodb://'), 60_000);
    // Its children: the JVM and (under tsx) esbuild's service process.
    const javaPids = execFileSync('ps', ['-o', 'pid=,comm=', '--ppid', String(db.child.pid)], { encoding: 'utf8' })
      .split('\n')
      .map((row) => row.trim().split(/\s+/))
      .filter(([, comm]) => comm === 'java')
      .map(([pid]) => Number(pid));
    expect(javaPids).toHaveLength(1);

    const killedAt = Date.now();
    process.kill(javaPids[0]!, 'SIGKILL');
    const { code, at } = await db.exit;
    console.info(`npm run db after its JVM was killed: exit ${code} after ${at - killedAt} ms`);
    expect(code).not.toBe(0);
    expect(code).not.toBeNull();
    expect(at - killedAt).toBeLessThan(3_000);
    expect(db.lines.some(msg('the database process died; exiting'))).toBe(true);
  });

  it('still stops the database and exits 0 on SIGTERM', async () => {
    const db = spawnTsx('src/dev/db-main.ts', { ALLOTMENT_EMBEDDED_ENGINE: 'mongo-java-server', DB_PORT: '0', LOG_LEVEL: 'info' });
    await db.waitFor((line) => typeof line === 'string' && line.startsWith('MONGODB_URI=mongodb://'), 60_000);
    db.child.kill('SIGTERM');
    const { code, signal } = await db.exit;
    expect({ code, signal, lines: db.lines }).toMatchObject({ code: 0, signal: null });
    expect(db.lines.some(msg('the database process died; exiting'))).toBe(false);
  });
});
