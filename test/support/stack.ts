import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TEST_JWT_SECRET } from './harness.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export interface StackInfo {
  gatewayUrl: string;
  gatewayWsUrl: string;
  dashboardUrl?: string;
  allotmentUrl: string;
  tokens: { operator: string; support: string; customer: string };
}

export interface RunningStack {
  info: StackInfo;
  process: ChildProcess;
  output(): string;
  /** The pids of the stack's direct children (Allotment, accounts, gateway). */
  children(): number[];
  /**
   * Sends `signal` (default SIGTERM) to the stack, or with `group` to its whole process
   * group as a terminal's Ctrl-C does, then resolves with the exit code (fails the wait
   * after `timeoutMs`).
   */
  stop(options?: { signal?: NodeJS.Signals; group?: boolean; timeoutMs?: number }): Promise<number | null>;
}

/**
 * `npm run stack` as a real process (node --import tsx scripts/stack.ts), on free ports,
 * signing with the test secret. `env` adds variables (MONGODB_URI + MONGODB_DB to use the
 * shared test database instead of an embedded one of its own).
 */
export async function startStack(env: Record<string, string> = {}, timeoutMs = 120_000): Promise<RunningStack> {
  const infoFile = join(tmpdir(), `allotment-stack-${process.pid}-${Date.now()}.json`);
  const { MONGODB_URI: _ignored, ...inherited } = process.env;
  const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/stack.ts'], {
    cwd: root,
    env: {
      ...inherited,
      GATEWAY_PORT: String(await freePort()),
      ALLOTMENT_PORT: String(await freePort()),
      ACCOUNTS_PORT: String(await freePort()),
      DASHBOARD_PORT: String(await freePort()),
      AUTH_JWT_SECRET: TEST_JWT_SECRET,
      STACK_INFO_FILE: infoFile,
      STACK_DASHBOARD: '0',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group, like a command started from a terminal.
    detached: true,
  });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const deadline = Date.now() + timeoutMs;
  let info: StackInfo | undefined;
  while (!info) {
    if (child.exitCode !== null) throw new Error(`the stack exited with ${child.exitCode}:\n${output}`);
    if (Date.now() > deadline) {
      child.kill('SIGTERM');
      throw new Error(`the stack did not start within ${timeoutMs} ms:\n${output}`);
    }
    try {
      info = JSON.parse(readFileSync(infoFile, 'utf8')) as StackInfo;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
  rmSync(infoFile, { force: true });
  return {
    info,
    process: child,
    output: () => output,
    children: () =>
      execFileSync('ps', ['-o', 'pid=', '--ppid', String(child.pid)], { encoding: 'utf8' })
        .split('\n')
        .map((line) => Number(line.trim()))
        .filter((pid) => pid > 0),
    async stop({ signal = 'SIGTERM', group = false, timeoutMs: stopTimeoutMs = 40_000 } = {}) {
      if (child.exitCode === null) {
        if (group) process.kill(-child.pid!, signal);
        else child.kill(signal);
      }
      const timer = new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error(`the stack did not stop within ${stopTimeoutMs} ms:\n${output}`)), stopTimeoutMs).unref(),
      );
      return Promise.race([exited, timer]);
    },
  };
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
