import { randomUUID } from 'node:crypto';
import type { Db } from 'mongodb';
import type { Logger } from '../../logger.js';
import type { AuditLog } from '../audit/index.js';
import { toMicros } from '../../shared/quantity.js';
import { NO_TELEMETRY, type DomainTelemetry } from '../../shared/telemetry.js';
import { decide as entitlementDecide } from '../entitlements/index.js';
import { isPeriodFinal } from './counters.js';
import { UsageEngine, type EnginePlugins } from './engine.js';
import { FaultInjector } from './faults.js';
import { GaugeLedger } from './gauge-ledger.js';
import type { UsagePublisher } from './events.js';
import type { LateUsage, UsageBatchView, UsageReceiptView } from './model.js';
import { reconcileCounter, type ReconciliationReport } from './reconcile.js';
import { UsageLedger } from './repository.js';
import { RateWindows } from './rate-windows.js';
import { parseGroupBy, UsageBreakdown } from './breakdown.js';
import { buildUsageSeries, defaultRange, type Granularity, type UsageSeriesView } from './series.js';
import { UsageSweeper } from './sweeper.js';
import type { Decide, GrantedCapacity, OpenTerms } from './terms.js';
import {
  type SetUsageInputShape,
  validateBatchSize,
  validateSetUsage,
  validateUsageEvent,
  type UsageEventInputShape,
} from './validation.js';

export interface UsageServiceDeps {
  db: Db;
  audit: AuditLog;
  logger: Logger;
  leaseMs: number;
  retentionDays: number;
  /** Merged contract terms per request (the entitlements module). */
  openTerms: OpenTerms;
  /** The R6 decision rule; the entitlements module's `decide` unless a test swaps it. */
  decide?: Decide;
  /** Granted capacity per counter (R5), from the grants module: the HARD guard counts it. */
  granted: GrantedCapacity;
  /** Where CounterChanged goes, at the exactly-once point. */
  events: UsagePublisher;
  /** How often the sweeper looks for expired leases and stale pending entries. */
  sweepIntervalMs?: number;
  /** Counts receipts by status (metrics). */
  telemetry?: DomainTelemetry;
}

export interface Caller {
  actor: string;
  requestId: string | null;
}

/**
 * The usage module's service: recording usage exactly once (recordUsage, recordUsageBatch;
 * the path is engine.ts → plan.ts → guarded-update.ts → settle.ts, recovery.ts for
 * takeovers), usage series, reconciliation, and the background sweeper. It publishes
 * CounterChanged at its exactly-once point. Authorization is the resolvers' job.
 */
export class UsageService {
  /** Tests arm crash points here (see faults.ts); inert in production. */
  readonly faults = new FaultInjector();
  private readonly ledger: UsageLedger;
  private readonly engine: UsageEngine;
  private readonly sweeper: UsageSweeper;
  private readonly plugins: EnginePlugins;

  constructor(private readonly deps: UsageServiceDeps) {
    this.ledger = new UsageLedger(deps.db);
    this.plugins = { openTerms: deps.openTerms, decide: deps.decide ?? entitlementDecide, granted: deps.granted };
    const logger = deps.logger.child({ module: 'usage' });
    this.engine = new UsageEngine({
      ledger: this.ledger,
      gauges: new GaugeLedger(deps.db),
      audit: deps.audit,
      events: deps.events,
      faults: this.faults,
      plugins: this.plugins,
      logger,
      leaseMs: deps.leaseMs,
      retentionDays: deps.retentionDays,
      instanceId: randomUUID().slice(0, 8),
      rateWindows: new RateWindows(deps.db),
    });
    this.sweeper = new UsageSweeper({
      engine: this.engine,
      ledger: this.ledger,
      logger,
      leaseMs: deps.leaseMs,
      intervalMs: deps.sweepIntervalMs ?? Math.min(1_000, deps.leaseMs),
    });
  }

  async recordUsage(input: UsageEventInputShape, caller: Caller): Promise<UsageReceiptView> {
    const receivedAt = new Date();
    const command = validateUsageEvent(input, { now: receivedAt, retentionDays: this.deps.retentionDays });
    const [receipt] = await this.engine.ingest([command], { ...caller, receivedAt });
    (this.deps.telemetry ?? NO_TELEMETRY).usageRecorded(receipt!.status, 1);
    return receipt!;
  }

  /**
   * setUsage (R16): sets a GAUGE's level, exactly once per idempotency key (the same key
   * space as recordUsage). The engine turns it into the delta from the level it finds,
   * atomically (gauge-update.ts).
   */
  async setUsage(input: SetUsageInputShape, caller: Caller): Promise<UsageReceiptView> {
    const receivedAt = new Date();
    const command = validateSetUsage(input, { now: receivedAt, retentionDays: this.deps.retentionDays });
    const [receipt] = await this.engine.ingest([command], { ...caller, receivedAt });
    (this.deps.telemetry ?? NO_TELEMETRY).usageRecorded(receipt!.status, 1);
    return receipt!;
  }

  async recordUsageBatch(inputs: readonly UsageEventInputShape[], caller: Caller): Promise<UsageBatchView> {
    validateBatchSize(inputs.length);
    const receivedAt = new Date();
    const context = { now: receivedAt, retentionDays: this.deps.retentionDays };
    const commands = inputs.map((input, index) => validateUsageEvent(input, context, index));
    const receipts = await this.engine.ingest(commands, { ...caller, receivedAt }, true);
    const count = (status: UsageReceiptView['status']) => receipts.filter((receipt) => receipt.status === status).length;
    const telemetry = this.deps.telemetry ?? NO_TELEMETRY;
    for (const status of ['ACCEPTED', 'DUPLICATE', 'REJECTED'] as const)
      if (count(status) > 0) telemetry.usageRecorded(status, count(status));
    return { accepted: count('ACCEPTED'), duplicates: count('DUPLICATE'), rejected: count('REJECTED'), receipts };
  }

  /** HOUR/DAY/MONTH usage of one feature from the counters' hour buckets. */
  async usageSeries(
    accountId: string,
    feature: string,
    granularity: Granularity,
    from?: Date | null,
    to?: Date | null,
    groupBy?: string | null,
  ): Promise<UsageSeriesView> {
    const range = defaultRange(granularity, new Date());
    const start = from ?? (to ? new Date(to.getTime() - (range.to.getTime() - range.from.getTime())) : range.from);
    const end = to ?? range.to;
    const key = groupBy == null ? null : parseGroupBy(groupBy);
    const counters = await this.ledger.counterHours(accountId, feature, start, end);
    const series = buildUsageSeries(counters, feature, granularity, start, end);
    if (key === null) return series;
    const groups = await new UsageBreakdown(this.deps.db).groups(
      counters.map((counter) => counter._id),
      key,
      granularity,
      series.from,
      end,
    );
    return { ...series, groups };
  }

  reconcile(target: { accountId: string; feature: string; periodStart: Date }, caller: Caller): Promise<ReconciliationReport> {
    return reconcileCounter({ ledger: this.ledger, audit: this.deps.audit, retentionDays: this.deps.retentionDays }, target, caller);
  }

  /** Rating (issue 8): a period's invoice became final; later events there are `late` (R8). */
  markPeriodFinal(
    counter: { counterId: string; accountId: string; feature: string; periodStart: Date; periodEnd: Date | null },
    at?: Date,
  ): Promise<void> {
    return this.ledger.markPeriodFinal(counter, at);
  }

  /** Whether rating has finalised this counter's period (R8: later events there are late). */
  async isPeriodFinal(counterId: string): Promise<boolean> {
    return isPeriodFinal(await this.ledger.counter(counterId));
  }

  /**
   * Usage accepted late (R8) into the given counters, one entry per posted posting: what
   * rating re-rates. The engine flags a posting `late` when the counter it incremented was
   * already final; its accepted increment is `inc`, its accepted events its ACCEPTED runs.
   */
  async lateUsage(counterIds: readonly string[]): Promise<LateUsage[]> {
    if (counterIds.length === 0) return [];
    const postings = await this.ledger.latePostings(counterIds);
    return postings.map((posting) => ({
      postingId: posting._id,
      counterId: posting.counterId!,
      units: toMicros(posting.inc ?? 0n),
      events: (posting.outcomes ?? []).filter((run) => run.outcome === 'ACCEPTED').reduce((sum, run) => sum + run.last - run.first + 1, 0),
      postedAt: posting.postedAt ?? null,
    }));
  }

  startSweeper(): void {
    this.sweeper.start();
  }

  /** What the sweeper has recovered since start (operators and recovery tests read it). */
  get recoveryTotals(): Readonly<{ resumed: number; pulled: number; compensated: number; expired: number }> {
    return this.sweeper.totals;
  }

  /** Deletes events and postings past retention now, instead of on the sweeper's schedule. */
  deleteExpired(): Promise<number> {
    return this.sweeper.deleteExpired();
  }

  async stopSweeper(): Promise<void> {
    await this.sweeper.stop();
    await this.engine.drain();
  }
}
