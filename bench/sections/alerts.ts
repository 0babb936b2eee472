/**
 * SPEC §4: threshold alert delivery, from the recordUsage response to the subscriber
 * (p99 <= 50 ms on the same instance, <= 1 s across instances). Idle subscriptions'
 * memory is measured in idle-subscriptions.ts.
 *
 * Latency: one graphql-ws subscriber per account; each recordUsage crosses exactly one
 * threshold (thresholds every 10 %, usage in steps of 10 %). An alert that reaches the
 * subscriber before the mutation's response counts as 0 ms. Across instances, the
 * subscriber is on a second Allotment instance on the same database, which follows the
 * first by polling and then by change stream (on the embedded stand-in, change streams
 * slow down as its oplog grows: see LiveUpdates). BENCH_ALERT_SAMPLES sets the number of
 * alerts per case (default 300).
 */
import { createClient, type Client } from 'graphql-ws';
import { MongoClient } from 'mongodb';
import WebSocket from 'ws';
import { startAllotment } from '../../src/app.js';
import { DEFAULT_POLL_INTERVAL_MS } from '../../src/modules/alerts/feed.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { summarize, type BenchContext, type BenchSection } from '../harness.js';

const THRESHOLDS = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100];
/** LiveUpdates' default poll interval. */
const POLL_INTERVAL_MS = DEFAULT_POLL_INTERVAL_MS;

export const ALERTS = `subscription ($accountId: ID!) { usageAlerts(accountId: $accountId) { id threshold } }`;
const RECORD = `mutation ($input: UsageEventInput!) { recordUsage(input: $input) { status } }`;

export const alertsSection: BenchSection = {
  name: 'alerts',
  description: 'threshold alert latency (mutation response -> subscriber), same instance and across instances',
  async run(context) {
    const { __type } = await context.graphql(`{ __type(name: "Mutation") { fields { name } } }`);
    if (!__type?.fields.some((field: { name: string }) => field.name === 'recordUsage')) {
      context.report('skipped: this build has no recordUsage mutation');
      return;
    }
    const samples = Number(process.env.BENCH_ALERT_SAMPLES ?? 300);
    await seedAlertPlan(context);

    const sameInstance = await measureLatency(context, context.allotment.url, context.allotment.url, samples, 'same');
    context.report(describe('same instance', sameInstance));

    // The subscriber's instance follows the writer's through the feed: both ways of doing so.
    for (const feed of ['polling', 'change-stream'] as const) {
      const config = loadConfig({ NODE_ENV: 'development', PORT: '0', MONGODB_DB: context.dbName, LOG_LEVEL: 'silent', LIVE_FEED: feed });
      const other = await startAllotment({ config, logger: createLogger('silent'), mongodbUri: context.database.uri });
      try {
        const jitter = feed === 'polling' ? POLL_INTERVAL_MS : 0;
        const bound = feed === 'polling' ? 250 : 100;
        let across: LatencyRun;
        try {
          across = await measureLatency(context, context.allotment.url, other.url, samples, `across_${feed.replace('-', '_')}`, jitter);
        } catch (error) {
          const reason =
            error instanceof Error ? error.message : String(error && typeof error === 'object' && 'reason' in error ? error.reason : error);
          context.target({
            name: `alert across instances, ${feed} path`,
            figure: `not measured: ${reason}`,
            baseline: '',
            ratio: '',
            target: `≤ ${bound} ms`,
            met: false,
          });
          continue;
        }
        context.report(describe(`across, ${other.services.live.feedModes.alerts}`, across));
        // Delivery is what the feed controls: from the writer's response to the subscriber.
        // From sending adds the mutation's own latency (the recordUsage targets' business).
        const p99 = summarize(across.latencies).p99;
        const fromSend = summarize(across.fromSend).p99;
        context.target({
          name: `alert across instances, ${feed} path`,
          figure:
            `p99 ${p99.toFixed(0)} ms after the mutation's response (${fromSend.toFixed(0)} ms from sending it; ` +
            `${other.services.live.feedModes.alerts}${across.lost ? `, ${across.lost} lost` : ''})`,
          baseline: '',
          ratio: '',
          target: `≤ ${bound} ms`,
          met: p99 <= bound && across.lost === 0 && other.services.live.feedModes.alerts === feed,
        });
      } finally {
        await other.stop();
      }
    }
    if (context.database.engine === 'mongo-java-server') await explainStandInStreams(context);
  },
};

/**
 * Why the change-stream path is slow on the stand-in (docs/performance.md): it has no
 * awaitData; every getMore re-runs the change-stream aggregation over the whole oplog
 * (every write of the run, in every database), so a change is seen one to two such scans
 * after its commit. Measured here: one insert's delivery on a fresh raw stream, beside
 * the oplog's size.
 */
async function explainStandInStreams(context: BenchContext): Promise<void> {
  const client = new MongoClient(context.database.uri, { monitorCommands: true });
  await client.connect();
  try {
    const oplog = await client
      .db('local')
      .collection('oplog.rs')
      .estimatedDocumentCount()
      .catch(() => NaN);
    const probe = client.db(context.dbName).collection(`bench_stream_probe_${Date.now().toString(36)}`);
    const stream = probe.watch([{ $match: { operationType: 'insert' } }], { maxAwaitTimeMS: 1_000 });
    const getMores: number[] = [];
    const started = new Map<number, number>();
    client.on('commandStarted', (event) => event.commandName === 'getMore' && started.set(event.requestId, performance.now()));
    client.on('commandSucceeded', (event) => {
      if (event.commandName === 'getMore') getMores.push(performance.now() - started.get(event.requestId)!);
    });
    await stream.tryNext();
    const sent = performance.now();
    await probe.insertOne({ at: new Date() });
    await stream.next();
    const delivered = performance.now() - sent;
    await stream.close();
    const scan = summarize(Float64Array.from(getMores));
    context.report(
      `stand-in change streams: oplog ${oplog} entries; one getMore takes p50 ${scan.p50.toFixed(0)} ms (max ${scan.max.toFixed(0)} ms, ${getMores.length} of them), ` +
        `insert to change ${delivered.toFixed(0)} ms. No awaitData: each getMore rescans the whole oplog.`,
    );
  } finally {
    await client.close();
  }
}

async function seedAlertPlan(context: BenchContext): Promise<void> {
  await context.graphql(`mutation ($input: FeatureInput!) { defineFeature(input: $input) { key } }`, {
    input: { key: 'api_calls', name: 'API calls', type: 'METERED', unit: 'call' },
  });
  await context.graphql(`mutation ($input: PlanInput!) { publishPlan(input: $input) { version } }`, {
    input: {
      key: 'alerts_bench',
      name: 'Alerts bench',
      currency: 'USD',
      entitlements: [
        { feature: 'api_calls', included: '100', enforcement: 'SOFT', overage: { unitPrice: '0.01', per: '1' }, thresholds: THRESHOLDS },
      ],
    },
  });
}

interface LatencyRun {
  latencies: Float64Array;
  /** From sending the mutation to the alert's arrival: the end-to-end view. */
  fromSend: Float64Array;
  beforeResponse: number;
  lost: number;
}

/** Records on `writeUrl`, subscribed on `subscribeUrl`; one crossing per recordUsage, one at a time. */
async function measureLatency(
  context: BenchContext,
  writeUrl: string,
  subscribeUrl: string,
  samples: number,
  tag: string,
  jitterMs = 0,
): Promise<LatencyRun> {
  // The first threshold of each account proves its subscription is live; the rest are samples.
  const accounts = Math.ceil(samples / (THRESHOLDS.length - 1));
  const prefix = `acct_alert_${tag}_${Date.now().toString(36)}`;
  for (let i = 0; i < accounts; i++) {
    await context.graphql(`mutation ($input: ContractInput!) { upsertContract(input: $input) { id } }`, {
      input: { id: `ctr_${prefix}_${i}`, accountId: `${prefix}_${i}`, planKey: 'alerts_bench', startsAt: '2026-01-01T00:00:00Z' },
    });
  }
  const client = wsClient(subscribeUrl);
  const arrivals = new Map<string, number>();
  let waiting: { key: string; resolve: () => void } | undefined;
  let subscribed = 0;
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('alert subscriptions were not acknowledged in 10 s')), 10_000);
    for (let i = 0; i < accounts; i++) {
      const accountId = `${prefix}_${i}`;
      client.subscribe<{ usageAlerts: { threshold: number } }>(
        { query: ALERTS, variables: { accountId } },
        {
          next: ({ data }) => {
            const key = `${accountId}|${data!.usageAlerts.threshold}`;
            arrivals.set(key, performance.now());
            if (waiting?.key === key) waiting.resolve();
          },
          error: reject,
          complete: () => undefined,
        },
      );
    }
    // graphql-ws has no subscribe acknowledgement: a first crossing per account proves it.
    void (async () => {
      for (let i = 0; i < accounts; i++) {
        const key = `${prefix}_${i}|${THRESHOLDS[0]}`;
        for (let attempt = 0; !arrivals.has(key); attempt++) {
          if (attempt === 0) await record(writeUrl, `${prefix}_${i}`, `warm-${i}`);
          await new Promise((r) => setTimeout(r, 5));
        }
        subscribed++;
      }
      clearTimeout(timer);
      resolve();
    })().catch(reject);
  });
  await ready;

  const latencies: number[] = [];
  const fromSend: number[] = [];
  let beforeResponse = 0;
  let lost = 0;
  try {
    for (let step = 1; step < THRESHOLDS.length && latencies.length + lost < samples; step++) {
      for (let i = 0; i < accounts && latencies.length + lost < samples; i++) {
        const accountId = `${prefix}_${i}`;
        const key = `${accountId}|${THRESHOLDS[step]}`;
        // A random pause keeps samples from locking onto a poller's phase.
        if (jitterMs > 0) await sleep(Math.random() * jitterMs);
        const arrived = new Promise<void>((resolve) => (waiting = { key, resolve }));
        const sent = performance.now();
        await record(writeUrl, accountId, `s${step}-${i}`);
        const responded = performance.now();
        const timedOut = await Promise.race([arrived.then(() => false), sleep(5_000).then(() => true)]);
        waiting = undefined;
        if (timedOut) {
          lost++;
          continue;
        }
        const latency = arrivals.get(key)! - responded;
        if (latency < 0) beforeResponse++;
        latencies.push(Math.max(0, latency));
        fromSend.push(arrivals.get(key)! - sent);
      }
    }
  } finally {
    await client.dispose();
  }
  if (subscribed !== accounts) throw new Error('not every alert subscription was live');
  return { latencies: Float64Array.from(latencies), fromSend: Float64Array.from(fromSend), beforeResponse, lost };
}

function describe(label: string, run: LatencyRun): string {
  const latency = summarize(run.latencies);
  const endToEnd = summarize(run.fromSend);
  const ms = (value: number) => `${value.toFixed(2)} ms`;
  return (
    `alert latency, ${label.padEnd(24)} n=${run.latencies.length}  after the response: p50 ${ms(latency.p50)}  p99 ${ms(latency.p99)}  max ${ms(latency.max)}` +
    ` (${run.beforeResponse} arrived before it)  |  from sending the mutation: p50 ${ms(endToEnd.p50)}  p99 ${ms(endToEnd.p99)}` +
    `${run.lost ? `  ${run.lost} LOST` : ''}`
  );
}

async function record(url: string, accountId: string, idempotencyKey: string): Promise<void> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query: RECORD, variables: { input: { accountId, feature: 'api_calls', quantity: '10', idempotencyKey } } }),
  });
  const body = (await response.json()) as { errors?: unknown[] };
  if (body.errors?.length) throw new Error(`recordUsage failed: ${JSON.stringify(body.errors)}`);
}

export function wsClient(httpUrl: string): Client {
  return createClient({ url: httpUrl.replace(/^http/, 'ws'), webSocketImpl: WebSocket, retryAttempts: 0, lazy: false });
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
