import type { Db } from 'mongodb';
import type { Logger } from '../../logger.js';
import { type Periodic, startPeriodic } from '../../shared/periodic.js';
import { InsertFeed, type FeedMode } from './feed.js';
import { LiveHub, type BalanceLoader } from './hub.js';
import { parseAlertDoc, parseBalanceChangeDoc, type AlertDoc, type BalanceChangeDoc } from './model.js';
import type { AlertRepository } from './repository.js';

export interface LiveUpdatesOptions<V> {
  repository: AlertRepository;
  logger: Logger;
  loadBalance: BalanceLoader<V>;
  /**
   * 'auto' follows change streams on a replica set or sharded cluster and polls elsewhere;
   * 'change-stream' tries them on any server; 'polling' never does (config LIVE_FEED).
   */
  feedMode?: 'auto' | 'change-stream' | 'polling';
  pollIntervalMs?: number;
  alertQueueBound?: number;
  balanceIntervalMs?: number;
  sweepIntervalMs?: number;
}

/**
 * The live half of the alerts module on one instance: two feeds (alerts, balance changes)
 * read from MongoDB by every instance, the hub that hands them to this instance's
 * subscribers, and the sweeper of expired balance-feed rows.
 *
 * Delivery guarantee (documented in the README):
 * - Every alert stored while a subscription is open is pushed to it exactly once,
 *   whichever instance stored it and whichever instance holds the socket. (One stored just
 *   before the subscription was registered may be pushed too.)
 * - Per counter (account, feature, period) alerts arrive in threshold order: 80 is stored
 *   before anyone stores 90, the feed is in commit order, and the write path hands lower
 *   thresholds stored elsewhere to local subscribers before its own.
 * - Nothing is lost to a crash: the alert is stored before the usage mutation answers,
 *   and usage recovery re-runs the evaluation (idempotently) for a crashed request.
 * - Subscriptions are live only: alerts stored while a client was disconnected, or while
 *   its instance restarted, are read with `Account.alerts`. A subscriber more than
 *   `alertQueueBound` (1,000) alerts behind is ended with an error, not buffered.
 * - Latency: on the instance that stored it, an alert is pushed before the mutation's
 *   response is sent. Other instances get it from the change stream within milliseconds;
 *   with the polling fallback, within `pollIntervalMs` (100 ms) plus two small queries.
 * - Live balances are coalesced: at most one recomputation per 100 ms per (account,
 *   feature) and one update per 100 ms per subscription; the last state always arrives.
 */
export class LiveUpdates<V> {
  readonly hub: LiveHub<V>;
  private readonly alertFeed: InsertFeed<AlertDoc>;
  private readonly balanceFeed: InsertFeed<BalanceChangeDoc>;
  private sweeper: Periodic | undefined;

  constructor(private readonly options: LiveUpdatesOptions<V>) {
    const { repository, logger } = options;
    this.hub = new LiveHub<V>({
      logger,
      loadBalance: options.loadBalance,
      alertQueueBound: options.alertQueueBound,
      balanceIntervalMs: options.balanceIntervalMs,
    });
    const common = { logger, pollIntervalMs: options.pollIntervalMs };
    this.alertFeed = new InsertFeed<AlertDoc>({
      ...common,
      name: repository.alerts.collectionName,
      collection: repository.alerts,
      timeField: 'triggeredAt',
      parse: parseAlertDoc,
      timeOf: (alert) => alert.triggeredAt,
      orderBatch: orderAlerts,
      deliver: (alerts) => this.hub.dispatchAlerts(alerts),
    });
    this.balanceFeed = new InsertFeed<BalanceChangeDoc>({
      ...common,
      name: repository.balanceChanges.collectionName,
      collection: repository.balanceChanges,
      timeField: 'at',
      // Balance rows are only wake-up calls, so a shorter look-back is enough.
      overlapMs: 2_000,
      parse: parseBalanceChangeDoc,
      timeOf: (change) => change.at,
      deliver: (changes) => {
        for (const change of changes) this.hub.balanceChanged(change.accountId, change.feature);
      },
    });
  }

  /** Serves this instance's subscribers straight from the write path (see LocalDelivery). */
  readonly localDelivery = {
    alertsStored: (alerts: AlertDoc[]) => this.alertFeed.deliverDirect(alerts),
    balanceChanged: (change: BalanceChangeDoc) => this.balanceFeed.deliverDirect([change]),
  };

  get feedModes(): { alerts: FeedMode | undefined; balances: FeedMode | undefined } {
    return { alerts: this.alertFeed.mode, balances: this.balanceFeed.mode };
  }

  /** `feedDb`: the same database through a client of the feeds' own (see InsertFeed.start). */
  async start(feedDb?: Db): Promise<void> {
    const { alerts, balanceChanges } = this.options.repository;
    const mode = (await this.useChangeStreams(feedDb ?? alerts.db)) ? 'auto' : 'polling';
    await Promise.all([
      this.alertFeed.start({ through: feedDb?.collection<AlertDoc>(alerts.collectionName), mode }),
      this.balanceFeed.start({ through: feedDb?.collection<BalanceChangeDoc>(balanceChanges.collectionName), mode }),
    ]);
    const interval = this.options.sweepIntervalMs ?? 60_000;
    this.sweeper = startPeriodic(
      () => this.options.repository.sweepBalanceChanges(),
      interval,
      (error) => this.options.logger.warn({ err: error }, 'balance feed sweep failed'),
    );
  }

  /**
   * MongoDB has change streams on replica sets and sharded clusters only. A server that
   * says it is neither is polled, even if it accepts `watch`: the embedded stand-in does,
   * but rescans its whole oplog for every open stream on every write, which slowed even
   * raw inserts 2.6-fold in the usage-batch bench.
   */
  private async useChangeStreams(db: Db): Promise<boolean> {
    const mode = this.options.feedMode ?? 'auto';
    if (mode !== 'auto') return mode === 'change-stream';
    const hello = await db.admin().command({ hello: 1 });
    return typeof hello.setName === 'string' || hello.msg === 'isdbgrid';
  }

  async stop(): Promise<void> {
    this.hub.stop();
    await Promise.all([this.alertFeed.stop(), this.balanceFeed.stop(), this.sweeper?.stop()]);
  }
}

/**
 * Order for a batch found by polling: by time, except that alerts of one counter and arm
 * epoch keep ascending thresholds even if two instances' clocks disagree (the service
 * stores 80 before anyone stores 90).
 */
export function orderAlerts(alerts: AlertDoc[]): AlertDoc[] {
  const byTime = [...alerts].sort((a, b) => a.triggeredAt.getTime() - b.triggeredAt.getTime() || a.threshold - b.threshold);
  const groups = new Map<string, { slots: number[]; alerts: AlertDoc[] }>();
  byTime.forEach((alert, index) => {
    const key = `${alert.counterId}|${alert.epoch}`;
    let group = groups.get(key);
    if (!group) {
      group = { slots: [], alerts: [] };
      groups.set(key, group);
    }
    group.slots.push(index);
    group.alerts.push(alert);
  });
  const ordered = new Array<AlertDoc>(byTime.length);
  for (const { slots, alerts: members } of groups.values()) {
    members.sort((a, b) => a.threshold - b.threshold);
    slots.forEach((slot, i) => {
      ordered[slot] = members[i]!;
    });
  }
  return ordered;
}
