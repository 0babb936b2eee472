import type { Logger } from '../../logger.js';
import type { AlertDoc } from './model.js';
import { AlertQueue, LatestValueQueue, type AlertDelivery } from './queues.js';

/** A subscriber's filter: one account, and either some features or all of them (null). */
interface Listener {
  accountId: string;
  features: ReadonlySet<string> | null;
}

/**
 * Listeners by account, so a feed document costs one map lookup however many there are.
 * An account with one listener (the common case: a dashboard per account) keeps it
 * directly, without a Set (issue 19: idle subscription memory).
 */
class AccountListeners<L extends Listener> {
  private readonly byAccount = new Map<string, L | Set<L>>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  add(listener: L): () => void {
    const present = this.byAccount.get(listener.accountId);
    if (present === undefined) this.byAccount.set(listener.accountId, listener);
    else if (present instanceof Set) present.add(listener);
    else this.byAccount.set(listener.accountId, new Set([present, listener]));
    this.count++;
    return () => this.remove(listener);
  }

  private remove(listener: L): void {
    const present = this.byAccount.get(listener.accountId);
    if (present === listener) {
      this.byAccount.delete(listener.accountId);
    } else if (present instanceof Set && present.delete(listener)) {
      if (present.size === 0) this.byAccount.delete(listener.accountId);
    } else {
      return; // already removed
    }
    this.count--;
  }

  *matching(accountId: string, feature: string): Iterable<L> {
    const present = this.byAccount.get(accountId);
    if (present === undefined) return;
    if (!(present instanceof Set)) {
      if (!present.features || present.features.has(feature)) yield present;
      return;
    }
    for (const listener of present) if (!listener.features || listener.features.has(feature)) yield listener;
  }

  has(accountId: string, feature: string): boolean {
    return !this.matching(accountId, feature)[Symbol.iterator]().next().done;
  }
}

interface AlertListener extends Listener {
  queue: AlertQueue<AlertDoc>;
}

interface BalanceListener<V> extends Listener {
  queue: LatestValueQueue<BalanceUpdate<V>>;
}

export interface BalanceUpdate<V> {
  accountId: string;
  feature: string;
  entitlement: V;
}

/** Recomputes the live balance of one (account, feature); null when there is nothing to show. */
export type BalanceLoader<V> = (accountId: string, feature: string) => Promise<V | null>;

export interface LiveHubOptions<V> {
  logger: Logger;
  loadBalance: BalanceLoader<V>;
  /** Alerts waiting per subscription before it is ended as too slow. */
  alertQueueBound?: number;
  /** Minimum spacing of balance updates, per subscription and per (account, feature). */
  balanceIntervalMs?: number;
}

/** Coalescing state of one (account, feature) whose balance subscribers exist. */
interface BalanceChannel {
  dirty: boolean;
  running: boolean;
  lastRunAt: number;
  timer: NodeJS.Timeout | undefined;
}

/**
 * One per instance: the local subscribers of alerts and live balances, fed by the
 * instance's feeds (every alert and balance change of every instance arrives here).
 *
 * Balance changes are coalesced twice. Per (account, feature) the entitlement is
 * recomputed at most once per interval, with a trailing run when changes arrived during
 * the last one, and the result is shared by every subscriber of that key. Per subscription
 * the latest state per feature waits in a LatestValueQueue, paced to the same interval.
 */
export class LiveHub<V> {
  private readonly alertListeners = new AccountListeners<AlertListener>();
  private readonly balanceListeners = new AccountListeners<BalanceListener<V>>();
  private readonly channels = new Map<string, BalanceChannel>();
  private readonly alertQueueBound: number;
  private readonly balanceIntervalMs: number;
  private stopped = false;

  constructor(private readonly options: LiveHubOptions<V>) {
    this.alertQueueBound = options.alertQueueBound ?? 1_000;
    this.balanceIntervalMs = options.balanceIntervalMs ?? 100;
  }

  /** Registered listeners (what tests watch return to zero after sockets close). */
  listenerCounts(): { alerts: number; balances: number; balanceChannels: number } {
    return { alerts: this.alertListeners.size, balances: this.balanceListeners.size, balanceChannels: this.channels.size };
  }

  subscribeAlerts(accountId: string, features: readonly string[] | null | undefined): AlertQueue<AlertDoc> {
    const queue = new AlertQueue<AlertDoc>(this.alertQueueBound);
    queue.onRelease(this.alertListeners.add({ accountId, features: featureSet(features), queue }));
    return queue;
  }

  subscribeBalances(accountId: string, features: readonly string[] | null | undefined): LatestValueQueue<BalanceUpdate<V>> {
    const queue = new LatestValueQueue<BalanceUpdate<V>>(this.balanceIntervalMs);
    queue.onRelease(this.balanceListeners.add({ accountId, features: featureSet(features), queue }));
    return queue;
  }

  /** From the alert feed, in feed order. */
  dispatchAlerts(alerts: readonly AlertDoc[]): void {
    for (const alert of alerts) {
      // A pool's alert reaches the owner's and every member's subscribers (R13).
      for (const accountId of alert.audience ?? [alert.accountId]) {
        for (const listener of this.alertListeners.matching(accountId, alert.feature)) listener.queue.push(alert);
      }
    }
  }

  /** From the balance feed: schedules a recomputation when anyone here is listening. */
  balanceChanged(accountId: string, feature: string): void {
    if (this.stopped || !this.balanceListeners.has(accountId, feature)) return;
    const key = channelKey(accountId, feature);
    let channel = this.channels.get(key);
    if (!channel) {
      channel = { dirty: false, running: false, lastRunAt: -Infinity, timer: undefined };
      this.channels.set(key, channel);
    }
    channel.dirty = true;
    this.schedule(key, accountId, feature, channel);
  }

  stop(): void {
    this.stopped = true;
    for (const channel of this.channels.values()) clearTimeout(channel.timer);
    this.channels.clear();
  }

  /**
   * Runs a recomputation now, or when the interval since the last one has passed. A
   * channel lives on for one interval after its last run, so back-to-back changes stay
   * paced, and is dropped once that passes with nothing new.
   */
  private schedule(key: string, accountId: string, feature: string, channel: BalanceChannel): void {
    if (this.stopped || channel.running || channel.timer) return;
    const wait = channel.lastRunAt + this.balanceIntervalMs - performance.now();
    if (wait > 0) {
      channel.timer = setTimeout(() => {
        channel.timer = undefined;
        this.schedule(key, accountId, feature, channel);
      }, wait);
      return;
    }
    if (!channel.dirty || !this.balanceListeners.has(accountId, feature)) {
      if (this.channels.get(key) === channel) this.channels.delete(key);
      return;
    }
    channel.dirty = false;
    channel.running = true;
    channel.lastRunAt = performance.now();
    void this.recompute(accountId, feature).finally(() => {
      channel.running = false;
      this.schedule(key, accountId, feature, channel);
    });
  }

  private async recompute(accountId: string, feature: string): Promise<void> {
    let entitlement: V | null;
    try {
      entitlement = await this.options.loadBalance(accountId, feature);
    } catch (error) {
      // The next change retries; a subscriber keeps its previous state meanwhile.
      this.options.logger.warn({ err: error, accountId, feature }, 'live balance recomputation failed');
      return;
    }
    if (entitlement === null || this.stopped) return;
    const update: BalanceUpdate<V> = { accountId, feature, entitlement };
    for (const listener of this.balanceListeners.matching(accountId, feature)) listener.queue.offer(feature, update);
  }
}

function featureSet(features: readonly string[] | null | undefined): ReadonlySet<string> | null {
  return features ? new Set(features) : null;
}

function channelKey(accountId: string, feature: string): string {
  return `${accountId}|${feature}`;
}

export type { AlertDelivery };
