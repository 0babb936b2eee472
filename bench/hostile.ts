/**
 * Hostile load (issue 12): while an attacker sends the worst requests it can, a second
 * client's trivial query must keep its p99 under 100 ms. Not a timed test: a script that
 * reports, run with `npm run bench:hostile`.
 *
 * One Allotment instance on the embedded database, auth configured (HS256), loopback only.
 * Both clients run in a worker thread, so their own work (building 1 MiB bodies, parsing
 * responses) never sits on the server's event loop; the server has the main thread alone.
 *
 * Attacker: HOSTILE_CONCURRENCY loops (default 1: "one client") cycling through the catalogue below for
 * HOSTILE_SECONDS (default 15), at most HOSTILE_MAX_REQUESTS (default 5,000) requests.
 * Victim: one request at a time, `{ __typename }` and a single checkEntitlement
 * alternately, every 5 ms; its latencies give the reported p50/p99/max. Exits 0 when the
 * victim's p99 is under 100 ms, 1 otherwise.
 */
import { Worker } from 'node:worker_threads';
import { SignJWT } from 'jose';
import { startAllotment } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { resolveDatabase } from '../src/dev/embedded-db.js';
import { createLogger } from '../src/logger.js';
import type { BenchContext } from './harness.js';
import { seedContract } from './sections/seed.js';

const SECRET = 'hostile-bench-secret-that-is-long-enough-0123456789';
const seconds = Number(process.env.HOSTILE_SECONDS ?? 15);
const concurrency = Number(process.env.HOSTILE_CONCURRENCY ?? 1);
const maxRequests = Number(process.env.HOSTILE_MAX_REQUESTS ?? 5_000);
const P99_TARGET_MS = 100;

async function sign(claims: Record<string, unknown>, sub: string): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setIssuedAt(now)
    .setExpirationTime(now + 3600)
    .sign(new TextEncoder().encode(SECRET));
}

/** The clients, as plain JS for the worker (global fetch, no imports). */
const CLIENTS = `
const { parentPort, workerData } = require('node:worker_threads');
const { url, operator, customer, accountId, seconds, concurrency, maxRequests } = workerData;
const json = (body, token) => ({ method: 'POST', headers: { 'content-type': 'application/json', ...(token ? { authorization: 'Bearer ' + token } : {}) }, body: typeof body === 'string' ? body : JSON.stringify(body) });

function nested(levels) {
  let s = 'id';
  for (let i = 0; i < levels; i++) s = 'contracts { id account { ' + s + ' } }';
  return 'query ($reps: [_Any!]!) { _entities(representations: $reps) { ... on Account { ' + s + ' } } }';
}
const checks = (n) => Array.from({ length: n }, (_, i) => ({ accountId, feature: i % 2 ? 'api_calls' : 'sso' }));
const events = (n, tag) => Array.from({ length: n }, (_, i) => ({
  accountId, feature: 'api_calls', quantity: '1', idempotencyKey: 'hostile-' + tag + '-' + i,
  properties: { endpoint: '/v1/projects/{projectId}/search', method: 'POST', region: 'eu-west-1', status: 200, latencyMs: 183, userAgent: 'acme-sdk-python/3.12.1', requestId: '0f8e2b7c-1a4d-4e59-9b3c-7d6a5e4f3c2b' },
}));
const wide = 'id status startsAt endsAt billingAnchor plan { key version name currency } planHistory { effectiveAt plan { key version } }';
const costly = 'query ($reps: [_Any!]!) { ' + Array.from({ length: 12 }, (_, i) => 'a' + i + ': _entities(representations: $reps) { ... on Account { contracts { ' + wide + ' account { contracts { ' + wide + ' account { contracts { ' + wide + ' } } } } } } }').join(' ') + ' }';
const accountReps = { reps: [{ __typename: 'Account', id: accountId }] };
const checks1000 = checks(1000);

// The catalogue: each entry builds one request (bodies prebuilt where they do not change).
const attacks = [
  ['depth 19 (customer token)', () => json({ query: nested(19), variables: accountReps }, customer)],
  ['1,000 aliases x 1,000 checks', (() => { const b = JSON.stringify({ query: 'query ($c: [EntitlementCheckInput!]!) { ' + Array.from({ length: 1000 }, (_, i) => 'a' + i + ': checkEntitlements(checks: $c) { allowed }').join(' ') + ' }', variables: { c: checks1000 } }); return () => json(b, operator); })()],
  ['30 aliases sharing 1,000 checks (budget)', (() => { const b = JSON.stringify({ query: 'query ($c: [EntitlementCheckInput!]!) { ' + Array.from({ length: 30 }, (_, i) => 'a' + i + ': checkEntitlements(checks: $c) { allowed }').join(' ') + ' }', variables: { c: checks(34) } }); return () => json(b, operator); })()],
  ['1,000 checks, the most allowed', (() => { const b = JSON.stringify({ query: 'query ($c: [EntitlementCheckInput!]!) { checkEntitlements(checks: $c) { allowed reason used remaining } }', variables: { c: checks1000 } }); return () => json(b, operator); })()],
  ['30,000 aliases, no token', (() => { const b = JSON.stringify({ query: '{ ' + Array.from({ length: 30000 }, (_, i) => 'a' + i + ': checkEntitlement(accountId: "x", feature: "y") { allowed }').join(' ') + ' }' }); return () => json(b, null); })()],
  ['30,000 aliases, forged token', (() => { const b = JSON.stringify({ query: '{ ' + Array.from({ length: 30000 }, (_, i) => 'a' + i + ': __typename').join(' ') + ' }' }); return () => json(b, operator.slice(0, -4) + 'AAAA'); })()],
  ['4 MiB body, operator token', (() => { const b = JSON.stringify({ query: '{ __typename }', variables: { pad: 'x'.repeat(4 * 1024 * 1024) } }); return () => json(b, operator); })()],
  ['token flood (12,000 tokens)', (() => { const b = JSON.stringify({ query: '{ ' + Array.from({ length: 12000 }, () => '__typename').join(' ') + ' }' }); return () => json(b, operator); })()],
  ['over-cost query', () => json({ query: costly, variables: accountReps }, operator)],
  ['1,000-event batch (max size)', (() => { let n = 0; return () => json({ query: 'mutation ($e: [UsageEventInput!]!) { recordUsageBatch(events: $e) { accepted duplicates rejected } }', variables: { e: events(1000, n++) } }, operator); })()],
  ['1,000 _entities with entitlements', (() => { const b = JSON.stringify({ query: 'query ($r: [_Any!]!) { _entities(representations: $r) { ... on Account { id entitlements { feature { key } used remaining } } } }', variables: { r: Array.from({ length: 1000 }, (_, i) => ({ __typename: 'Account', id: i === 0 ? accountId : 'acct_h' + i })) } }); return () => json(b, operator); })()],
  ['malformed representations', () => json({ query: 'query ($r: [_Any!]!) { _entities(representations: $r) { __typename } }', variables: { r: [{ __typename: 'Contract', id: { $ne: null } }] } }, operator)],
];

const deadline = Date.now() + seconds * 1000;
let sent = 0;
const outcomes = new Map();
async function attacker(offset) {
  for (let i = offset; Date.now() < deadline && sent < maxRequests; i++) {
    const [name, build] = attacks[i % attacks.length];
    sent++;
    const started = performance.now();
    let status = 'error';
    try {
      const response = await fetch(url, build());
      const text = await response.text();
      let code = '';
      try { code = JSON.parse(text).errors?.[0]?.extensions?.code ?? 'ok'; } catch { code = 'non-json'; }
      status = response.status + ' ' + code;
    } catch (error) { status = 'network error: ' + (error.cause?.code ?? error.message); }
    const entry = outcomes.get(name) ?? { count: 0, totalMs: 0, maxMs: 0, statuses: new Set() };
    const ms = performance.now() - started;
    entry.count++; entry.totalMs += ms; entry.maxMs = Math.max(entry.maxMs, ms); entry.statuses.add(status);
    outcomes.set(name, entry);
  }
}

async function victim() {
  const latencies = [];
  const bodies = [
    JSON.stringify({ query: '{ __typename }' }),
    JSON.stringify({ query: 'query ($a: ID!) { checkEntitlement(accountId: $a, feature: "sso") { allowed } }', variables: { a: accountId } }),
  ];
  let failures = 0;
  for (let i = 0; Date.now() < deadline; i++) {
    const started = performance.now();
    const response = await fetch(url, json(bodies[i % 2], customer));
    const body = await response.json();
    latencies.push(performance.now() - started);
    if (response.status !== 200 || body.errors) failures++;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return { latencies, failures };
}

(async () => {
  const [victimResult] = await Promise.all([victim(), ...Array.from({ length: concurrency }, (_, i) => attacker(i * 3))]);
  const attacksReport = [...outcomes].map(([name, e]) => ({ name, count: e.count, meanMs: e.totalMs / e.count, maxMs: e.maxMs, statuses: [...e.statuses] }));
  parentPort.postMessage({ victim: victimResult, attacks: attacksReport, sent });
})().catch((error) => parentPort.postMessage({ error: String(error && error.stack || error) }));
`;

async function main(): Promise<void> {
  const logger = createLogger('silent');
  const database = await resolveDatabase({ uri: process.env.MONGODB_URI, logger });
  const dbName = `hostile_${Date.now().toString(36)}`;
  const config = loadConfig({
    NODE_ENV: 'development',
    HOST: '127.0.0.1',
    PORT: '0',
    MONGODB_DB: dbName,
    LOG_LEVEL: 'silent',
    AUTH_JWT_SECRET: SECRET,
  });
  const allotment = await startAllotment({ config, logger, mongodbUri: database.uri });
  try {
    const operator = await sign({ scope: 'entitlements:read usage:write catalog:write contracts:write' }, 'hostile-operator');
    const accountId = 'acct_hostile';
    const customer = await sign({ scope: 'entitlements:read', account_id: accountId }, 'hostile-customer');
    const graphql = async (query: string, variables: Record<string, unknown> = {}) => {
      const response = await fetch(allotment.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${operator}` },
        body: JSON.stringify({ query, variables }),
      });
      const body = (await response.json()) as { data?: any; errors?: unknown[] };
      if (body.errors?.length) throw new Error(`seed failed: ${JSON.stringify(body.errors)}`);
      return body.data;
    };
    await seedContract({ graphql } as unknown as BenchContext, accountId);

    process.stdout.write(
      `hostile load: ${concurrency} attacker loops for ${seconds} s (at most ${maxRequests} requests) against ${allotment.url}\n`,
    );
    const result = await new Promise<any>((resolve, reject) => {
      const worker = new Worker(CLIENTS, {
        eval: true,
        workerData: { url: allotment.url, operator, customer, accountId, seconds, concurrency, maxRequests },
      });
      worker.once('message', (message) => {
        void worker.terminate();
        if (message.error) reject(new Error(message.error));
        else resolve(message);
      });
      worker.once('error', reject);
    });

    process.stdout.write(`\nattacker: ${result.sent} requests\n`);
    for (const attack of result.attacks) {
      process.stdout.write(
        `  ${attack.name.padEnd(40)} ${String(attack.count).padStart(5)} sent  mean ${attack.meanMs.toFixed(1).padStart(7)} ms  max ${attack.maxMs.toFixed(1).padStart(7)} ms  -> ${attack.statuses.join(', ')}\n`,
      );
    }
    const sorted = Float64Array.from(result.victim.latencies as number[]).sort();
    const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
    const p99 = at(0.99);
    process.stdout.write(
      `\nvictim ({ __typename } / checkEntitlement, one at a time): ${sorted.length} requests, ${result.victim.failures} failed  ` +
        `p50 ${at(0.5).toFixed(2)} ms  p90 ${at(0.9).toFixed(2)} ms  p99 ${p99.toFixed(2)} ms  max ${sorted[sorted.length - 1]!.toFixed(2)} ms\n`,
    );
    const ok = p99 < P99_TARGET_MS && result.victim.failures === 0;
    process.stdout.write(`${ok ? 'PASS' : 'FAIL'}: victim p99 ${p99.toFixed(2)} ms (target < ${P99_TARGET_MS} ms)\n`);
    process.exitCode = ok ? 0 : 1;
  } finally {
    await allotment.database.db.dropDatabase().catch(() => undefined);
    await allotment.stop();
    await database.stop();
  }
}

main().catch((error) => {
  process.stderr.write(`${(error as Error).stack ?? error}\n`);
  process.exit(1);
});
