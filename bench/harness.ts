/**
 * What every bench section gets: one embedded database, one Allotment instance on it
 * (auth open, logs silent), a GraphQL helper, a way to run open-loop load from a worker
 * thread, and a reporter. Sections live in bench/sections/ and are listed in run.ts.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { startAllotment, type RunningAllotment } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { resolveDatabase, type ResolvedDatabase } from '../src/dev/embedded-db.js';
import { createLogger } from '../src/logger.js';
import type { LoadPlan, LoadResult, LoadTarget } from './load.js';

export interface BenchOptions {
  /** Offered rate for rate-based sections (BENCH_RATE, default 2000 req/s). */
  rate: number;
  /** Measured seconds per load run (BENCH_SECONDS, default 10). */
  seconds: number;
  warmupSeconds: number;
}

export interface BenchContext {
  options: BenchOptions;
  database: ResolvedDatabase;
  allotment: RunningAllotment;
  dbName: string;
  /** Runs an operation against the instance; throws on GraphQL errors. */
  graphql<T = any>(query: string, variables?: Record<string, unknown>): Promise<T>;
  /** Open-loop load at `rate` for `seconds` (defaults from options), from a worker thread. */
  load(target: LoadTarget, overrides?: Partial<Omit<LoadPlan, 'target'>>): Promise<LoadResult>;
  /** Prints a line of the section's report. */
  report(line?: string): void;
  /**
   * Runs `work` and measures the server thread meanwhile (this thread runs the server):
   * its event-loop busy share, and with BENCH_PROFILE_DIR set a V8 CPU profile of it
   * written to `<dir>/<label>.cpuprofile` (summarise with bench/profile-summary.ts).
   */
  measured<T>(label: string, work: () => Promise<T>): Promise<{ value: T; busy: number; busyMs: number; cpuMs: number }>;
  /** Records and prints one issue-19 target: figure, raw baseline, ratio, target, MET/MISSED. */
  target(entry: TargetResult): void;
  /** Every target recorded so far, for the closing summary. */
  targets: TargetResult[];
}

export interface TargetResult {
  name: string;
  /** The figure, as printed (with its unit). */
  figure: string;
  /** The raw baseline it is compared with, same run; '' when the target is absolute. */
  baseline: string;
  /** The compared ratio, e.g. `2.4x` or `81 %`; '' when absolute. */
  ratio: string;
  target: string;
  met: boolean;
}

export function printTarget(entry: TargetResult): string {
  return (
    `TARGET ${entry.name}: ${entry.figure}` +
    (entry.baseline ? ` | raw ${entry.baseline}` : '') +
    (entry.ratio ? ` | ratio ${entry.ratio}` : '') +
    ` | target ${entry.target} | ${entry.met ? 'MET' : 'MISSED'}`
  );
}

let profileSession: Session | undefined;

async function profiled<T>(label: string, work: () => Promise<T>): Promise<T> {
  const dir = process.env.BENCH_PROFILE_DIR;
  if (!dir) return work();
  if (!profileSession) {
    profileSession = new Session();
    profileSession.connect();
    await profileSession.post('Profiler.enable');
  }
  await profileSession.post('Profiler.start');
  try {
    return await work();
  } finally {
    const { profile } = await profileSession.post('Profiler.stop');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `${label}.cpuprofile`), JSON.stringify(profile));
  }
}

export interface BenchSection {
  name: string;
  description: string;
  run(context: BenchContext): Promise<void>;
}

export function readOptions(env: NodeJS.ProcessEnv = process.env): BenchOptions {
  const number = (name: string, fallback: number) => {
    const value = env[name] === undefined ? fallback : Number(env[name]);
    if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number; got "${env[name]}"`);
    return value;
  };
  return { rate: number('BENCH_RATE', 2000), seconds: number('BENCH_SECONDS', 10), warmupSeconds: number('BENCH_WARMUP_SECONDS', 2) };
}

export async function startBenchEnvironment(options: BenchOptions): Promise<BenchContext & { stop(): Promise<void> }> {
  const logger = createLogger('silent');
  const database = await resolveDatabase({ uri: process.env.MONGODB_URI, logger });
  const dbName = `bench_${Date.now().toString(36)}`;
  const config = loadConfig({ NODE_ENV: 'development', PORT: '0', MONGODB_DB: dbName, LOG_LEVEL: 'silent' });
  const allotment = await startAllotment({ config, logger, mongodbUri: database.uri });

  const targets: TargetResult[] = [];
  const report = (line = '') => void process.stdout.write(`${line}\n`);
  return {
    options,
    database,
    allotment,
    dbName,
    targets,
    target(entry) {
      targets.push(entry);
      report(printTarget(entry));
    },
    async measured(label, work) {
      const before = performance.eventLoopUtilization();
      // CPU time of this thread (the server's): unlike busy wall time, not inflated when
      // other processes take the cores, so it compares across runs on a shared machine.
      const cpuBefore = process.threadCpuUsage();
      const value = await profiled(label, work);
      const busy = performance.eventLoopUtilization(before);
      const cpu = process.threadCpuUsage(cpuBefore);
      return { value, busy: busy.utilization, busyMs: busy.active, cpuMs: (cpu.user + cpu.system) / 1000 };
    },
    async graphql(query, variables = {}) {
      const response = await fetch(allotment.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query, variables }),
      });
      const body = (await response.json()) as { data?: any; errors?: unknown[] };
      if (body.errors?.length) throw new Error(`GraphQL errors: ${JSON.stringify(body.errors)}`);
      return body.data;
    },
    load: (target, overrides = {}) =>
      runInWorker({
        target,
        rate: options.rate,
        seconds: options.seconds,
        warmupSeconds: options.warmupSeconds,
        maxInFlight: 1024,
        ...overrides,
      }),
    report,
    async stop() {
      await allotment.database.db.dropDatabase().catch(() => undefined);
      await allotment.stop();
      await database.stop();
    },
  };
}

/**
 * `npm run bench` runs the compiled bench (dist/bench), so the server is measured as
 * `npm run start:prod` runs it, without tsx's module hooks; `tsx bench/run.ts` still works.
 */
export const RUNNING_COMPILED = import.meta.url.endsWith('.js');

/** The repository root, from bench/ (tsx) or dist/bench/ (compiled). */
export const REPO_ROOT = fileURLToPath(new URL(RUNNING_COMPILED ? '../../' : '../', import.meta.url));

function runInWorker(plan: LoadPlan): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    // Worker threads do not inherit tsx's loader: under tsx the .mjs shim registers it.
    const worker = new Worker(new URL(RUNNING_COMPILED ? './load-thread.js' : './load-worker.mjs', import.meta.url));
    worker.once('message', (message: { ok: true; result: LoadResult } | { ok: false; error: string }) => {
      void worker.terminate();
      if (message.ok) resolve(message.result);
      else reject(new Error(`load worker failed: ${message.error}`));
    });
    worker.once('error', reject);
    worker.postMessage(plan);
  });
}

export interface LatencySummary {
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export function summarize(samples: Float64Array): LatencySummary {
  const sorted = Float64Array.from(samples).sort();
  const at = (q: number) => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!);
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), max: sorted.length ? sorted[sorted.length - 1]! : NaN };
}

const ms = (value: number) => `${value.toFixed(2).padStart(7)} ms`;

/** One line per load run: offered vs achieved rate, latency percentiles from send and from due time. */
export function describeLoad(
  label: string,
  offered: number,
  result: LoadResult,
): { line: string; fromSend: LatencySummary; achieved: number } {
  const fromSend = summarize(result.fromSend);
  const fromDue = summarize(result.fromDue);
  const achieved = result.elapsedSeconds > 0 ? result.completed / result.elapsedSeconds : 0;
  const problems = [
    result.errors ? `${result.errors} errors (first: ${result.firstError})` : '',
    result.dropped ? `${result.dropped} dropped` : '',
  ]
    .filter(Boolean)
    .join(', ');
  const line =
    `${label.padEnd(34)} offered ${String(offered).padStart(5)}/s  achieved ${achieved.toFixed(0).padStart(5)}/s  ` +
    `p50 ${ms(fromSend.p50)}  p90 ${ms(fromSend.p90)}  p99 ${ms(fromSend.p99)}  max ${ms(fromSend.max)}  ` +
    `(p99 from due time ${ms(fromDue.p99).trim()})${problems ? `  ${problems}` : ''}`;
  return { line, fromSend, achieved };
}
