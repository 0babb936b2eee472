/**
 * SPEC §4: recordUsageBatch of 1,000 events over HTTP, events/s sustained, against raw
 * driver insertMany of the same events into a scratch collection of the same database in
 * the same run. Targets: >= 20,000 events/s and >= 50 % of raw.
 *
 * The two are interleaved batch by batch, so both see the same database state, JIT and
 * garbage-collector weather. Events carry client timestamps spread over the last minute
 * and small properties, as a real sender's would; api_calls is HARD-limited (growth
 * plan), so every batch pays for the atomic limit check. BENCH_USAGE_BATCHES sets the
 * number of measured batches (default 30).
 */
import { MongoClient } from 'mongodb';
import type { BenchSection } from '../harness.js';
import { seedContract } from './seed.js';

const BATCH = 1_000;
const WARMUP_BATCHES = 5;

const RECORD_BATCH = `mutation ($events: [UsageEventInput!]!) { recordUsageBatch(events: $events) { accepted duplicates rejected } }`;

function makeEvents(accountId: string, prefix: string) {
  const now = Date.now();
  return Array.from({ length: BATCH }, (_, i) => ({
    accountId,
    feature: 'api_calls',
    quantity: '1',
    idempotencyKey: `${prefix}-${i}`,
    timestamp: new Date(now - 60_000 + i * 60).toISOString(),
    properties: { endpoint: '/v1/search', region: 'eu-west-1' },
  }));
}

export const usageBatchSection: BenchSection = {
  name: 'usage-batch',
  description: 'recordUsageBatch (1,000 events) over HTTP vs raw driver insertMany of the same events',
  async run(context) {
    const measured = Number(process.env.BENCH_USAGE_BATCHES ?? 30);
    const accountId = `acct_batch_${Date.now().toString(36)}`;
    await seedContract(context, accountId);
    const raw = new MongoClient(context.database.uri, { useBigInt64: true, ignoreUndefined: true });
    await raw.connect();
    const scratch = raw.db(context.dbName).collection('bench_raw_events');
    try {
      let apiMs = 0;
      let rawMs = 0;
      for (let batch = 0; batch < WARMUP_BATCHES + measured; batch++) {
        const events = makeEvents(accountId, `b${batch}`);
        // Built before the clock starts: the measurement is the server's, not this client's.
        const body = JSON.stringify({ query: RECORD_BATCH, variables: { events } });
        const documents = events.map((event) => ({
          _id: JSON.stringify([event.accountId, event.idempotencyKey]),
          accountId: event.accountId,
          feature: event.feature,
          quantity: 1_000_000n,
          idempotencyKey: event.idempotencyKey,
          timestamp: new Date(event.timestamp),
          properties: event.properties,
        }));

        let started = performance.now();
        const response = await fetch(context.allotment.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
        const result = (await response.json()) as { data?: { recordUsageBatch: { accepted: number } }; errors?: unknown[] };
        const apiElapsed = performance.now() - started;
        if (result.errors || result.data?.recordUsageBatch.accepted !== BATCH)
          throw new Error(`batch failed: ${JSON.stringify(result).slice(0, 400)}`);

        started = performance.now();
        await scratch.insertMany(documents as never[], { ordered: false });
        const rawElapsed = performance.now() - started;

        if (batch >= WARMUP_BATCHES) {
          apiMs += apiElapsed;
          rawMs += rawElapsed;
        }
      }
      const apiRate = (measured * BATCH) / (apiMs / 1000);
      const rawRate = (measured * BATCH) / (rawMs / 1000);
      const counter = await raw.db(context.dbName).collection('usage_counters').findOne({ accountId });
      const sent = BigInt((WARMUP_BATCHES + measured) * BATCH) * 1_000_000n;
      const rate = (value: number) => `${value.toFixed(0).padStart(7)} events/s`;
      context.report(`${measured} batches of ${BATCH} after ${WARMUP_BATCHES} warm-up batches, interleaved`);
      context.report(`recordUsageBatch over HTTP   ${rate(apiRate)}  (${(apiMs / measured).toFixed(1)} ms per batch)`);
      context.report(`raw driver insertMany        ${rate(rawRate)}  (${(rawMs / measured).toFixed(1)} ms per batch)`);
      context.target({
        name: 'recordUsageBatch(1,000) throughput',
        figure: `${apiRate.toFixed(0)} events/s`,
        baseline: `insertMany ${rawRate.toFixed(0)} events/s`,
        ratio: `${((apiRate / rawRate) * 100).toFixed(1)} %`,
        target: '≥ 75 %',
        met: apiRate / rawRate >= 0.75,
      });
      context.report(
        `exactly once                 counter ${counter?.used === sent ? 'equals' : 'DIFFERS FROM'} the units sent (${counter?.used} micro-units)`,
      );
    } finally {
      await raw.close();
    }
  },
};
