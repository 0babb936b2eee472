/**
 * `npm run bench [section ...]`: runs every section below, or only the named ones, against
 * one embedded database and one Allotment instance. BENCH_RATE (default 2000 req/s),
 * BENCH_SECONDS (10) and BENCH_WARMUP_SECONDS (2) tune the rate-based sections;
 * MONGODB_URI benchmarks a real database instead of the embedded one.
 *
 * To add a section: write bench/sections/<name>.ts exporting a BenchSection, and list it here.
 */
import { availableParallelism, loadavg } from 'node:os';
import { printTarget, readOptions, startBenchEnvironment, type BenchSection } from './harness.js';
import { checkEntitlementSection } from './sections/check-entitlement.js';
import { readYourWritesSection } from './sections/read-your-writes.js';
import { usageBatchSection } from './sections/usage-batch.js';
import { alertsSection } from './sections/alerts.js';
import { idleSubscriptionsSection } from './sections/idle-subscriptions.js';
import { poolsSection } from './sections/pools.js';
import { rateLimitsSection } from './sections/rate-limits.js';
import { roundTripsSection } from './sections/round-trips.js';
import { usageSingleSection } from './sections/usage-single.js';

const SECTIONS: BenchSection[] = [
  checkEntitlementSection,
  roundTripsSection,
  // Before the sections that write much: on the stand-in every change-stream getMore
  // rescans the whole oplog (every write of the run), so late in a long run the
  // change-stream path measures the stand-in's oplog, not the feed (docs/performance.md).
  alertsSection,
  readYourWritesSection,
  usageBatchSection,
  idleSubscriptionsSection,
  usageSingleSection,
  poolsSection,
  rateLimitsSection,
];

async function main(): Promise<void> {
  const wanted = process.argv.slice(2);
  const unknown = wanted.filter((name) => !SECTIONS.some((section) => section.name === name));
  if (unknown.length > 0) {
    throw new Error(`Unknown bench section(s): ${unknown.join(', ')}. Available: ${SECTIONS.map((section) => section.name).join(', ')}`);
  }
  const selected = wanted.length > 0 ? SECTIONS.filter((section) => wanted.includes(section.name)) : SECTIONS;
  const options = readOptions();
  const context = await startBenchEnvironment(options);
  context.report(
    `Allotment bench: ${context.database.engine} at ${context.database.uri}, Node ${process.version}, ${availableParallelism()} CPUs`,
  );
  // Other work on the machine skews every figure; say how busy it was.
  context.report(
    `load average at start: ${loadavg()
      .map((value) => value.toFixed(2))
      .join(' ')}`,
  );
  try {
    for (const section of selected) {
      context.report();
      context.report(`== ${section.name}: ${section.description}`);
      // One section failing (a timeout on a loaded machine) must not cost the others' figures.
      await section.run(context).catch((error: unknown) => {
        context.report(`SECTION FAILED ${section.name}: ${error instanceof Error ? error.message : String(error)}`);
      });
    }
    context.report();
    context.report('== targets (issue 19), same-run ratios');
    for (const entry of context.targets) context.report(printTarget(entry));
    context.report();
    context.report(
      `load average at end: ${loadavg()
        .map((value) => value.toFixed(2))
        .join(' ')}`,
    );
  } finally {
    await context.stop();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
