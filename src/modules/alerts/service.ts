import { ObjectId } from 'mongodb';
import type { Logger } from '../../logger.js';
import type { EventPublisher } from '../../shared/events.js';
import { maxMicros, type Micros } from '../../shared/quantity.js';
import type { EntitlementView } from '../entitlements/index.js';
import type { CounterReader } from '../usage/index.js';

/** What alerts read of the usage module's counters. */
export type AlertCounters = Pick<CounterReader, 'periodTotal'>;
import { alertId, parseCounterId, type AlertDoc, type AlertEvents, type BalanceChangeDoc, type CounterChange } from './model.js';
import type { AlertRepository } from './repository.js';
import { crossedThresholds, reachedThresholds, thresholdsToRearm } from './thresholds.js';

export interface AlertServiceOptions {
  /** Told how many alerts each firing stored (metrics). */
  onFired?: (count: number) => void;
  /** How long a live-balance feed row is kept before the sweeper deletes it. */
  balanceRetentionMs?: number;
  /** Every entitlement of an account now (the entitlements module's views), for onTermsChanged. */
  accountEntitlements?: (accountId: string) => Promise<EntitlementView[]>;
  /** One entitlement now, for onGrantChanged. */
  entitlementNow?: (pair: { accountId: string; feature: string }) => Promise<EntitlementView | null>;
  /** This instance's subscribers, served from the write path (the live side). */
  localDelivery?: LocalDelivery;
  /**
   * AlertFired, awaited for every alert stored, new or found stored by a replay: a failed
   * handler fails the firing, hence the usage operation, and recovery publishes it again.
   */
  events?: EventPublisher<AlertEvents>;
}

/**
 * This instance's subscribers, served straight from the write path so that same-instance
 * latency is the insert's, not the feed's; the feed's copy is then dropped as seen.
 */
export interface LocalDelivery {
  alertsStored(alerts: AlertDoc[]): void;
  balanceChanged(change: BalanceChangeDoc): void;
}

/** Where an alert fires: one counter (account, feature, period) at one level of usage. */
interface FiringPoint {
  accountId: string;
  feature: string;
  counterId: string;
  periodStart: Date;
  periodEnd: Date | null;
  used: Micros;
  capacity: Micros;
  /** R13: the accounts whose subscribers hear a pool's alert. */
  audience?: string[];
}

/**
 * Threshold alerts (R9): evaluation at the usage module's exactly-once point, re-arming
 * when capacity grows, and the live-balance feed.
 *
 * Exactly once: an alert's id is (counter, threshold, arm epoch) and inserting it is the
 * decision, so racing instances, client retries and recovery replays all converge on one
 * document; the loser sees a duplicate key and does nothing.
 *
 * Order: when a change crosses any threshold, every threshold the counter has reached is
 * inserted, lowest first. Whoever inserts 90 has therefore seen 80 exist first, even when
 * two instances race on one counter, so 80 always precedes 90 in the feed.
 */
export class AlertService {
  private readonly balanceRetentionMs: number;
  private readonly accountEntitlements: AlertServiceOptions['accountEntitlements'];
  private readonly entitlementNow: AlertServiceOptions['entitlementNow'];
  private readonly localDelivery: LocalDelivery | undefined;
  private readonly events: EventPublisher<AlertEvents> | undefined;
  private readonly onFired: AlertServiceOptions['onFired'];
  /** Feed rows waiting for this tick's insertMany, one per (account, feature): the latest. */
  private balanceQueue = new Map<string, BalanceChangeDoc>();
  private balanceFlush: Promise<void> | undefined;

  constructor(
    private readonly repository: AlertRepository,
    private readonly counters: AlertCounters,
    private readonly logger: Logger,
    options: AlertServiceOptions = {},
  ) {
    this.balanceRetentionMs = options.balanceRetentionMs ?? 10 * 60_000;
    this.accountEntitlements = options.accountEntitlements;
    this.entitlementNow = options.entitlementNow;
    this.localDelivery = options.localDelivery;
    this.events = options.events;
    this.onFired = options.onFired;
  }

  /**
   * The usage module's counter-change listener. Idempotent: a replay of the same change
   * inserts nothing new. Throws on database errors, which fails the usage operation so
   * that its recovery publishes the change again (no alert is silently lost).
   */
  readonly onCounterChange = async (change: CounterChange): Promise<void> => {
    // Balance rows are wake-up calls, not records: written in the background, batched.
    // A pool's balance is every member's balance too (R13: entitlementUpdated reaches them).
    for (const accountId of [change.accountId, ...(change.members ?? [])]) {
      this.publishBalanceChange(accountId, change.feature, change.counterId).catch((error: unknown) =>
        this.logger.warn({ err: error, counterId: change.counterId }, 'live-balance feed write failed; the next change refreshes'),
      );
    }
    await this.evaluate(change);
  };

  /**
   * Alerts newly fired by a change, ascending (none when it crossed nothing). A change that
   * crosses any threshold also stores every lower threshold reached but not stored yet
   * (after a capacity cut, say); 80 is thus stored before anyone stores 90.
   */
  async evaluate(change: CounterChange): Promise<AlertDoc[]> {
    if (change.capacity === null) return [];
    if (change.gaugeSeq !== undefined) return this.evaluateGauge(change, change.capacity, change.gaugeSeq);
    // A replay may not know the original `before`: judge it by level.
    const crossed = change.replayed ? [] : crossedThresholds(change.before, change.after, change.capacity, change.thresholds);
    if (!change.replayed && crossed.length === 0) return [];
    const due = reachedThresholds(change.after, change.capacity, change.thresholds);
    return this.fire(
      {
        accountId: change.accountId,
        feature: change.feature,
        counterId: change.counterId,
        periodStart: change.period.start,
        periodEnd: change.period.end,
        used: change.after,
        capacity: change.capacity,
        ...(change.pooled ? { audience: [change.accountId, ...(change.members ?? [])] } : {}),
      },
      due,
      crossed,
    );
  }

  /**
   * R16: a gauge's level falls as well as rises, so a threshold re-arms whenever the level
   * is below it again, and each upward crossing is its own alert. Its id is named by the
   * change's sequence number in the gauge's history (the usage module's compare-and-set
   * makes it unique, and a replay carries the same one), so each crossing is stored once
   * across instances and crashes.
   */
  private evaluateGauge(change: CounterChange, capacity: Micros, gaugeSeq: number): Promise<AlertDoc[]> {
    const crossed = crossedThresholds(change.before, change.after, capacity, change.thresholds);
    if (crossed.length === 0) return Promise.resolve([]);
    const point = {
      accountId: change.accountId,
      feature: change.feature,
      counterId: change.counterId,
      periodStart: change.period.start,
      periodEnd: change.period.end,
      used: change.after,
      capacity,
    };
    return this.fire(point, crossed, [], gaugeSeq);
  }

  /**
   * Re-arms a counter's thresholds after its capacity grew (a grant, an upgrade): a
   * threshold re-arms when its alert in the current epoch fired under a smaller capacity
   * and usage is now below it (R9); it moves to a new arm epoch, so its next crossing has
   * a new alert id. Thresholds that never fired, or fired under this capacity, are left
   * alone, so calling this for a change that did not grow anything is harmless. Returns
   * the thresholds re-armed, and publishes a balance change (capacity is part of it).
   *
   * Usage racing with the re-arm is covered by reading the counter on both sides of the
   * epoch move: a crossing of the new capacity judged on terms read before the grant
   * shows up in the second reading, which fires it in the new epoch (the id makes a
   * concurrent firing of the same crossing a no-op).
   */
  async rearm(counterId: string, used: Micros, newCapacity: Micros | null, thresholds?: readonly number[] | null): Promise<number[]> {
    const { accountId, feature } = parseCounterId(counterId);
    const counterBefore = await this.counters.periodTotal(counterId);
    // Counters only grow within a period: the later of the two readings is the truth.
    const usedNow = maxMicros(used, counterBefore?.used ?? 0n);
    const below = thresholdsToRearm(usedNow, newCapacity, thresholds);
    const epochs = await this.repository.epochs(counterId, below);
    const current = await this.repository.alertsByIds(below.map((t) => alertId(counterId, t, epochs.get(t) ?? 0)));
    const rearmed = current.filter((alert) => newCapacity !== null && alert.capacity < newCapacity).map((alert) => alert.threshold);
    if (rearmed.length > 0) {
      // Compare-and-set from the epoch read: concurrent re-arms move it once, not twice.
      await Promise.all(rearmed.map((t) => this.repository.advanceEpoch(counterId, t, epochs.get(t) ?? 0)));
      const counterAfter = await this.counters.periodTotal(counterId);
      if (counterAfter && newCapacity !== null) {
        const due = reachedThresholds(counterAfter.used, newCapacity, rearmed);
        if (due.length > 0) await this.fire({ accountId, feature, counterId, ...counterAfter, capacity: newCapacity }, due);
      }
      this.logger.debug({ counterId, rearmed }, 'thresholds re-armed');
    }
    await this.publishBalanceChange(accountId, feature, counterId);
    return rearmed.sort((a, b) => a - b);
  }

  /**
   * A grant was issued or voided (GrantChanged): thresholds re-arm when capacity grew
   * (R9), and the live balance is pushed either way.
   */
  async onGrantChanged(change: { accountId: string; feature: string; grew: boolean }): Promise<void> {
    if (!this.entitlementNow) throw new Error('AlertService.onGrantChanged needs the entitlementNow dependency');
    const view = await this.entitlementNow(change);
    const counterId = view?.terms.counterId ?? null;
    if (change.grew && view && counterId && view.capacity !== null) {
      await this.rearm(counterId, view.used, view.capacity, view.terms.thresholds);
    } else {
      await this.publishBalanceChange(change.accountId, change.feature, counterId);
    }
  }

  /**
   * Re-evaluates an account's thresholds after its terms changed now (a plan change, an
   * override, a status change: R3 "thresholds are re-evaluated"): capacity that grew
   * re-arms what usage is below again, capacity that shrank fires what usage has reached
   * (once, as ever). Every feature's live balance is pushed too. Without access there is
   * no capacity, so a suspension neither re-arms nor fires anything.
   */
  async onTermsChanged(accountId: string): Promise<void> {
    if (!this.accountEntitlements) throw new Error('AlertService.onTermsChanged needs the accountEntitlements dependency');
    for (const view of await this.accountEntitlements(accountId)) {
      const { terms, used, capacity } = view;
      const measurable =
        terms.featureType === 'METERED' && terms.hasAccess && terms.counterId && terms.period && capacity !== null && capacity > 0n;
      if (!measurable) {
        await this.publishBalanceChange(accountId, terms.feature, terms.counterId);
        continue;
      }
      await this.rearm(terms.counterId!, used, capacity, terms.thresholds);
      const due = reachedThresholds(used, capacity, terms.thresholds);
      if (due.length > 0) {
        const { start, end } = terms.period!;
        await this.fire(
          // A pooled view's counter is its owner's (R13): the alert is the pool's.
          {
            accountId: terms.accountId,
            feature: terms.feature,
            counterId: terms.counterId!,
            periodStart: start,
            periodEnd: end,
            used,
            capacity,
          },
          due,
        );
      }
    }
  }

  /**
   * Tells every instance's live-balance subscribers that this balance changed. Local ones
   * hear at once; the feed row is queued and written with others of the same tick in one
   * insertMany, so a batch touching many counters costs one write, not one per counter.
   * Resolves when the row is stored.
   */
  publishBalanceChange(accountId: string, feature: string, counterId: string | null = null): Promise<void> {
    const at = new Date();
    const change: BalanceChangeDoc = {
      _id: new ObjectId(),
      accountId,
      feature,
      counterId,
      at,
      expiresAt: new Date(at.getTime() + this.balanceRetentionMs),
    };
    this.localDelivery?.balanceChanged(change);
    this.balanceQueue.set(`${accountId}|${feature}`, change);
    this.balanceFlush ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
      const changes = [...this.balanceQueue.values()];
      this.balanceQueue.clear();
      this.balanceFlush = undefined;
      return this.repository.insertBalanceChanges(changes);
    });
    return this.balanceFlush;
  }

  list(accountId: string, feature: string | undefined, first: number): Promise<AlertDoc[]> {
    return this.repository.list(accountId, feature, first);
  }

  /**
   * Inserts the alerts of `thresholds` (ascending) in their current epochs; returns the
   * new ones. A threshold in `crossing` whose alert already exists from a smaller capacity
   * is re-armed on the spot: usage never falls, so the ratio can only have dropped back
   * below the threshold because capacity grew since (R9). Grants and upgrades therefore
   * re-arm even when nobody calls `rearm`. The epoch moves by compare-and-set, so racing
   * instances agree on one new epoch and one alert.
   */
  private async fire(
    point: FiringPoint,
    thresholds: readonly number[],
    crossing: readonly number[] = [],
    /** R16: a gauge crossing's sequence number, used as the epoch of every threshold. */
    gaugeSeq?: number,
  ): Promise<AlertDoc[]> {
    const epochs =
      gaugeSeq === undefined ? await this.repository.epochs(point.counterId, thresholds) : new Map(thresholds.map((t) => [t, gaugeSeq]));
    const fired: AlertDoc[] = [];
    const storedBefore: AlertDoc[] = [];
    for (const threshold of thresholds) {
      let epoch = epochs.get(threshold) ?? 0;
      // Stamped per insert: a higher threshold is stamped after the lower one was stored.
      const build = (): AlertDoc => ({
        _id: alertId(point.counterId, threshold, epoch),
        ...point,
        threshold,
        epoch,
        triggeredAt: new Date(),
      });
      // Sequential on purpose: a lower threshold is in the feed before a higher one.
      const first = build();
      if (await this.repository.insertAlert(first)) {
        fired.push(first);
        continue;
      }
      const existing = await this.repository.alertById(alertId(point.counterId, threshold, epoch));
      if (existing && crossing.includes(threshold) && existing.capacity < point.capacity) {
        epoch = await this.repository.advanceEpoch(point.counterId, threshold, epoch);
        const alert = build();
        if (await this.repository.insertAlert(alert)) {
          fired.push(alert);
          continue;
        }
      }
      if (existing) storedBefore.push(existing);
    }
    // A replay finds the alerts a crashed attempt stored: publishing them again is what
    // lets a subscriber that missed them (the webhook outbox) catch up; handlers dedupe.
    for (const alert of [...storedBefore, ...fired].sort((a, b) => a.threshold - b.threshold)) {
      await this.events?.publish('AlertFired', alert);
    }
    if (fired.length === 0) return fired;
    this.onFired?.(fired.length);
    this.logger.info({ counterId: point.counterId, thresholds: fired.map((a) => a.threshold) }, 'usage alerts fired');
    // Lower thresholds another instance stored may not have reached this instance through
    // the feed yet; hand them over first so local subscribers keep threshold order.
    const lowest = fired[0]!.threshold;
    const ordered = [...storedBefore.filter((alert) => alert.threshold < lowest), ...fired].sort((a, b) => a.threshold - b.threshold);
    this.localDelivery?.alertsStored(ordered);
    return fired;
  }
}
