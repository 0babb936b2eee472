/**
 * An open-loop load generator, run in a worker thread so that issuing requests and
 * timing them does not share an event loop with the server under test.
 *
 * Open loop: request i is due at start + i / rate whether or not earlier ones have
 * answered, so a slow server meets a growing queue instead of a politely waiting client
 * (no coordinated omission). Two latencies are kept per request: from the moment it was
 * sent, and from the moment it was due (which adds any lag of the scheduler itself).
 */
import { Agent, request as httpRequest } from 'node:http';
import { MongoClient } from 'mongodb';

/** What one load run does per request. */
export type LoadTarget =
  /**
   * `body` may contain `%N%`, replaced by a number unique to each request (idempotency
   * keys), and `%K%`, replaced by the request's number modulo `spread` (which account).
   */
  | { kind: 'graphql'; url: string; body: string; spread?: number }
  | { kind: 'mongo-find-by-id'; uri: string; dbName: string; collection: string; id: string }
  /** What one single-event posting costs the database at least: insert the event, `$inc` its counter. */
  | { kind: 'mongo-insert-and-inc'; uri: string; dbName: string; collection: string; counterId: string; spread?: number }
  /** `$inc` on one document: the ceiling of a hot counter. */
  | { kind: 'mongo-inc-one'; uri: string; dbName: string; collection: string; id: string };

export interface LoadPlan {
  target: LoadTarget;
  /** Offered requests per second. */
  rate: number;
  /** Measured seconds, after `warmupSeconds` that are run and discarded. */
  seconds: number;
  warmupSeconds: number;
  /** In-flight requests beyond this are not sent and count as `dropped`. */
  maxInFlight: number;
  /**
   * Closed loop instead: this many callers, each sending its next request when the last
   * one answered, for the same warm-up and measured seconds (`rate` is then ignored).
   * Measures the most the server sustains, not its latency at a given rate.
   */
  closedLoop?: number;
}

export interface LoadResult {
  sent: number;
  completed: number;
  errors: number;
  dropped: number;
  firstError: string | null;
  /** Wall-clock seconds from the first measured send to the last measured answer. */
  elapsedSeconds: number;
  /** Milliseconds, one per completed measured request. */
  fromSend: Float64Array;
  fromDue: Float64Array;
}

type Issue = () => Promise<void>;

async function prepare(target: LoadTarget): Promise<{ issue: Issue; close(): Promise<void> }> {
  if (target.kind === 'graphql') {
    const url = new URL(target.url);
    const agent = new Agent({ keepAlive: true, maxSockets: 256 });
    const fixed = /%[NK]%/.test(target.body) ? null : Buffer.from(target.body);
    const run = `${process.pid}-${Date.now().toString(36)}`;
    let n = 0;
    const issue: Issue = () =>
      new Promise((resolve, reject) => {
        const i = n++;
        const body = fixed ?? Buffer.from(target.body.replaceAll('%N%', `${run}-${i}`).replaceAll('%K%', String(i % (target.spread ?? 1))));
        const req = httpRequest(
          {
            host: url.hostname,
            port: url.port,
            path: url.pathname,
            method: 'POST',
            agent,
            headers: { 'content-type': 'application/json', 'content-length': body.length },
          },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (chunk: Buffer) => chunks.push(chunk));
            res.on('end', () => {
              const text = Buffer.concat(chunks).toString('utf8');
              if (res.statusCode !== 200 || text.includes('"errors"')) reject(new Error(`HTTP ${res.statusCode}: ${text.slice(0, 300)}`));
              else resolve();
            });
            res.on('error', reject);
          },
        );
        req.on('error', reject);
        req.end(body);
      });
    return { issue, close: async () => agent.destroy() };
  }
  const client = new MongoClient(target.uri, { useBigInt64: true, maxPoolSize: 100 });
  await client.connect();
  const collection = client.db(target.dbName).collection(target.collection);
  const close = () => client.close();
  if (target.kind === 'mongo-inc-one') {
    return {
      issue: async () => void (await collection.updateOne({ _id: target.id as never }, { $inc: { used: 1_000_000n } }, { upsert: true })),
      close,
    };
  }
  if (target.kind === 'mongo-insert-and-inc') {
    let n = 0;
    const counters = client.db(target.dbName).collection(`${target.collection}_counters`);
    const issue: Issue = async () => {
      const key = `raw-${Date.now().toString(36)}-${n++}`;
      await collection.insertOne({
        _id: key as never,
        accountId: 'acct_raw',
        feature: 'api_calls',
        quantity: 1_000_000n,
        timestamp: new Date(),
      });
      await counters.updateOne(
        { _id: target.counterId as never },
        { $inc: { used: 1_000_000n }, $set: { updatedAt: new Date() } },
        { upsert: true },
      );
    };
    return { issue, close };
  }
  const issue: Issue = async () => {
    const doc = await collection.findOne({ _id: target.id as never });
    if (!doc) throw new Error(`document ${target.id} not found`);
  };
  return { issue, close };
}

export async function runLoad(plan: LoadPlan): Promise<LoadResult> {
  const { issue, close } = await prepare(plan.target);
  if (plan.closedLoop) {
    try {
      return await runClosedLoop(issue, plan.closedLoop, plan.warmupSeconds, plan.seconds);
    } finally {
      await close();
    }
  }
  const warmupCount = Math.round(plan.rate * plan.warmupSeconds);
  const total = warmupCount + Math.round(plan.rate * plan.seconds);
  const intervalMs = 1000 / plan.rate;
  const fromSend: number[] = [];
  const fromDue: number[] = [];
  let sent = 0;
  let completed = 0;
  let errors = 0;
  let dropped = 0;
  let inFlight = 0;
  let firstError: string | null = null;
  let measuredStart = 0;
  let measuredEnd = 0;
  const outstanding = new Set<Promise<void>>();

  const start = performance.now();
  await new Promise<void>((done) => {
    let next = 0;
    const tick = () => {
      const now = performance.now();
      // Send everything that is due; the timer only decides how often we look.
      while (next < total && start + next * intervalMs <= now) {
        const index = next++;
        const due = start + index * intervalMs;
        if (inFlight >= plan.maxInFlight) {
          if (index >= warmupCount) dropped++;
          continue;
        }
        const measured = index >= warmupCount;
        const sentAt = performance.now();
        if (measured && measuredStart === 0) measuredStart = sentAt;
        if (measured) sent++;
        inFlight++;
        const pending: Promise<void> = issue().then(
          () => {
            const end = performance.now();
            if (measured) {
              completed++;
              fromSend.push(end - sentAt);
              fromDue.push(end - due);
              measuredEnd = end;
            }
          },
          (error: unknown) => {
            if (measured) errors++;
            firstError ??= error instanceof Error ? error.message : String(error);
          },
        );
        const tracked = pending.finally(() => {
          inFlight--;
          outstanding.delete(tracked);
        });
        outstanding.add(tracked);
      }
      if (next < total) {
        const wait = start + next * intervalMs - performance.now();
        setTimeout(tick, Math.max(0, Math.floor(wait)));
      } else done();
    };
    tick();
  });
  // Bounded in time as well as count: stragglers get 10 seconds.
  await Promise.race([Promise.all(outstanding), new Promise((resolve) => setTimeout(resolve, 10_000).unref())]);
  await close();
  return {
    sent,
    completed,
    errors,
    dropped,
    firstError,
    elapsedSeconds: measuredEnd > measuredStart ? (measuredEnd - measuredStart) / 1000 : 0,
    fromSend: Float64Array.from(fromSend),
    fromDue: Float64Array.from(fromDue),
  };
}

/** `callers` loops, each issuing its next request when the previous one answered. */
async function runClosedLoop(issue: Issue, callers: number, warmupSeconds: number, seconds: number): Promise<LoadResult> {
  const start = performance.now();
  const measuredStart = start + warmupSeconds * 1000;
  const end = measuredStart + seconds * 1000;
  const latencies: number[] = [];
  let sent = 0;
  let errors = 0;
  let firstError: string | null = null;
  let lastAnswer = measuredStart;
  const caller = async () => {
    for (let now = performance.now(); now < end; now = performance.now()) {
      const measured = now >= measuredStart;
      if (measured) sent++;
      try {
        await issue();
        const answered = performance.now();
        if (measured) {
          latencies.push(answered - now);
          lastAnswer = answered;
        }
      } catch (error) {
        if (measured) errors++;
        firstError ??= error instanceof Error ? error.message : String(error);
      }
    }
  };
  await Promise.all(Array.from({ length: callers }, caller));
  const fromSend = Float64Array.from(latencies);
  return {
    sent,
    completed: latencies.length,
    errors,
    dropped: 0,
    firstError,
    elapsedSeconds: (lastAnswer - measuredStart) / 1000,
    fromSend,
    fromDue: Float64Array.from(fromSend),
  };
}
