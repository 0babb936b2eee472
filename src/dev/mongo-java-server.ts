/**
 * Starts mongo-java-server (the MongoDB-wire stand-in of SPEC §5) as a child JVM via
 * tools/mongo-java-server/Launcher.java (compiled once by compile-launcher.ts).
 *
 * - Dependencies are resolved by tools/mongo-java-server/fetch.sh (Maven) into
 *   classpath.txt on first use, and again whenever a listed jar has gone missing.
 * - The child's stdin stays open; the launcher exits when it reaches EOF, so the JVM
 *   dies with this process even if it is killed without running `stop()`.
 * - Once ready, the child and its pipes are unref'd, so a forgotten server never keeps
 *   a test run or script alive; `stop()` re-refs it and awaits its exit.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../logger.js';
import { compileLauncher, jdkExecutable } from './compile-launcher.js';

export interface MongoJavaServerOptions {
  /** Port to bind on 127.0.0.1; 0 or undefined picks a free one. */
  port?: number;
  logger: Logger;
  /** How long to wait for the launcher to report its URI (default 30 s). */
  startTimeoutMs?: number;
  /** Extra environment for the JVM (e.g. MONGO_LAUNCHER_STOCK_PLANNER=1), over this process's. */
  env?: Record<string, string>;
}

export interface MongoJavaServer {
  /** `mongodb://127.0.0.1:<port>/` */
  uri: string;
  /** Process id of the JVM. */
  pid: number | undefined;
  /** Resolves when the JVM has exited, for whatever reason. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Closes stdin, sends SIGTERM (SIGKILL after 5 s) and awaits the exit. Idempotent. */
  stop(): Promise<void>;
}

const TOOL_REL_DIR = join('tools', 'mongo-java-server');
const URI_LINE = /^MONGODB_URI=(\S+)\s*$/;
const STDERR_TAIL_CHARS = 4000;
const STOP_GRACE_MS = 5000;

/** Finds tools/mongo-java-server from src/dev (tsx) or dist/src/dev (built). */
export function mongoJavaServerDir(): string {
  const override = process.env.ALLOTMENT_MONGO_JAVA_SERVER_DIR;
  if (override) return override;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, TOOL_REL_DIR);
    if (existsSync(join(candidate, 'Launcher.java'))) return candidate;
    const parent = dirname(dir);
    if (parent === dir) {
      throw new Error(
        `mongo-java-server: cannot find ${join(TOOL_REL_DIR, 'Launcher.java')} above ${fileURLToPath(import.meta.url)} ` +
          '(set ALLOTMENT_MONGO_JAVA_SERVER_DIR to its folder)',
      );
    }
    dir = parent;
  }
}

function readClasspath(toolDir: string): string | undefined {
  const file = join(toolDir, 'classpath.txt');
  if (!existsSync(file)) return undefined;
  const classpath = readFileSync(file, 'utf8').trim();
  if (!classpath) return undefined;
  // A classpath from another machine or a wiped ~/.m2 is as good as none.
  const entries = classpath.split(delimiter).filter(Boolean);
  if (entries.length === 0 || !entries.every((entry) => existsSync(entry))) return undefined;
  return classpath;
}

function tail(text: string, chars = STDERR_TAIL_CHARS): string {
  return text.length > chars ? `…${text.slice(-chars)}` : text;
}

function runFetch(toolDir: string, logger: Logger): Promise<void> {
  const script = join(toolDir, 'fetch.sh');
  logger.info({ script }, 'mongo-java-server: resolving Maven dependencies (first run only)');
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [script], { cwd: toolDir, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const collect = (chunk: Buffer): void => {
      output = tail(output + chunk.toString('utf8'), 16_000);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    child.on('error', (err) => {
      reject(new Error(`mongo-java-server: cannot run ${script}: ${err.message}`));
    });
    child.on('close', (code, signal) => {
      if (code === 0) {
        resolve();
        return;
      }
      reject(
        new Error(
          `mongo-java-server: ${script} failed (${signal ?? `exit ${code}`}); ` +
            `Maven (mvn) and a JDK >= 17 with access to Maven Central are needed.\n${tail(output.trim())}`,
        ),
      );
    });
  });
}

let classpathPromise: Promise<string> | undefined;

/** Returns the launcher classpath, running fetch.sh first when needed (once per process). */
export function ensureMongoJavaServerClasspath(logger: Logger, toolDir = mongoJavaServerDir()): Promise<string> {
  const existing = readClasspath(toolDir);
  if (existing) return Promise.resolve(existing);
  classpathPromise ??= (async () => {
    await runFetch(toolDir, logger);
    const classpath = readClasspath(toolDir);
    if (!classpath) {
      throw new Error(`mongo-java-server: ${join(toolDir, 'fetch.sh')} succeeded but classpath.txt is missing or stale`);
    }
    return classpath;
  })().finally(() => {
    classpathPromise = undefined;
  });
  return classpathPromise;
}

/** ChildProcess pipes are net.Sockets at runtime; unref/ref them so they never pin the event loop. */
function setPipeRef(stream: Readable | Writable | null, ref: boolean): void {
  const handle = stream as unknown as { ref?: () => void; unref?: () => void } | null;
  if (ref) handle?.ref?.();
  else handle?.unref?.();
}

function setChildRef(child: ChildProcess, ref: boolean): void {
  if (ref) child.ref();
  else child.unref();
  setPipeRef(child.stdin, ref);
  setPipeRef(child.stdout, ref);
  setPipeRef(child.stderr, ref);
}

export async function startMongoJavaServer(opts: MongoJavaServerOptions): Promise<MongoJavaServer> {
  const logger = opts.logger.child({ module: 'mongo-java-server' });
  const port = opts.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`mongo-java-server: invalid port ${String(opts.port)}`);
  }
  const startTimeoutMs = opts.startTimeoutMs ?? 30_000;
  const toolDir = mongoJavaServerDir();
  const classpath = await ensureMongoJavaServerClasspath(logger, toolDir);
  const java = jdkExecutable('java');
  const extraJavaOpts = (process.env.ALLOTMENT_MONGO_JAVA_OPTS ?? '').split(/\s+/).filter(Boolean);

  const classesDir = await compileLauncher(toolDir, classpath, logger);
  const child = spawn(java, [...extraJavaOpts, '-cp', `${classpath}${delimiter}${classesDir}`, 'Launcher', String(port)], {
    cwd: toolDir,
    stdio: ['pipe', 'pipe', 'pipe'],
    windowsHide: true,
    ...(opts.env ? { env: { ...process.env, ...opts.env } } : {}),
  });

  let stderrTail = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    stderrTail = tail(stderrTail + chunk);
    for (const line of chunk.split('\n')) {
      if (line.trim()) logger.debug({ stderr: line.trimEnd() }, 'mongo-java-server stderr');
    }
  });
  // Writes to a dead child's stdin surface as EPIPE; the exit handler reports the real cause.
  child.stdin.on('error', () => undefined);

  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    child.once('error', () => resolve({ code: null, signal: null }));
  });

  // Last resort for a parent that exits without stop(); stdin EOF covers hard kills.
  const killOnExit = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);

  const uri = await new Promise<string>((resolve, reject) => {
    let stdoutBuf = '';
    let settled = false;
    const finish = (err: Error | undefined, value?: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(value as string);
    };
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      finish(
        new Error(
          `mongo-java-server: no MONGODB_URI line within ${startTimeoutMs} ms from ${java} ${join(toolDir, 'Launcher.java')}` +
            `\nstderr:\n${tail(stderrTail.trim()) || '(empty)'}`,
        ),
      );
    }, startTimeoutMs);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      if (settled) return; // keep draining so the pipe never fills up
      stdoutBuf += chunk;
      for (let newline = stdoutBuf.indexOf('\n'); newline >= 0; newline = stdoutBuf.indexOf('\n')) {
        const line = stdoutBuf.slice(0, newline);
        stdoutBuf = stdoutBuf.slice(newline + 1);
        const match = URI_LINE.exec(line.trim());
        if (match?.[1]) {
          finish(undefined, match[1]);
          return;
        }
        if (line.trim()) logger.debug({ stdout: line.trimEnd() }, 'mongo-java-server stdout');
      }
    });
    child.once('error', (err: NodeJS.ErrnoException) => {
      const hint = err.code === 'ENOENT' ? ' (is a JDK >= 17 installed and on PATH, or JAVA_HOME set?)' : '';
      finish(new Error(`mongo-java-server: cannot start ${java}: ${err.message}${hint}`));
    });
    child.once('exit', (code, signal) => {
      finish(
        new Error(
          `mongo-java-server: launcher exited (${signal ?? `code ${code}`}) before reporting its URI` +
            `\nstderr:\n${tail(stderrTail.trim()) || '(empty)'}`,
        ),
      );
    });
  }).catch((err: unknown) => {
    process.removeListener('exit', killOnExit);
    throw err;
  });

  setChildRef(child, false);
  logger.debug({ uri, pid: child.pid }, 'mongo-java-server started');

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      process.removeListener('exit', killOnExit);
      if (child.exitCode !== null || child.signalCode !== null) return;
      setChildRef(child, true); // keep the loop alive until the exit is observed
      child.stdin.end();
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
      try {
        await exited;
      } finally {
        clearTimeout(timer);
        child.stdout.destroy();
        child.stderr.destroy();
      }
      logger.debug({ pid: child.pid }, 'mongo-java-server stopped');
    })();
    return stopping;
  };

  return { uri, pid: child.pid, exited, stop };
}
