/**
 * The alerts module (R9) and live balances. Its reactions, registered by the composition
 * root: CounterChanged (thresholds at the usage module's exactly-once point), TermsChanged
 * (re-evaluate after a contract write), GrantChanged (re-arm when capacity grew).
 * - `alerts` (AlertService): those reactions, `publishBalanceChange`, and `Account.alerts`.
 * - `live` (LiveUpdates): this instance's feeds and subscriber hub; start/stop with the app.
 */
import type { Db } from 'mongodb';
import type { Logger } from '../../logger.js';
import type { EventPublisher } from '../../shared/events.js';
import type { AlertEvents } from './model.js';
import type { BalanceLoader } from './hub.js';
import { LiveUpdates, type LiveUpdatesOptions } from './live.js';
import { AlertRepository } from './repository.js';
import { type AlertCounters, AlertService, type AlertServiceOptions } from './service.js';

export { alertIndexes } from './repository.js';
export type { AlertService } from './service.js';
export type { LiveUpdates } from './live.js';
export type { AlertDoc, AlertEvents, CounterChange, EntitlementUpdateView } from './model.js';

export interface AlertsDeps<V> {
  db: Db;
  logger: Logger;
  counters: AlertCounters;
  /** Recomputes one live balance (the entitlements module's view). */
  loadBalance: BalanceLoader<V>;
  /** Every entitlement of an account now, for re-evaluating thresholds after terms change. */
  accountEntitlements: NonNullable<AlertServiceOptions['accountEntitlements']>;
  /** One entitlement now, for re-arming after a grant changed capacity. */
  entitlementNow: NonNullable<AlertServiceOptions['entitlementNow']>;
  live?: Omit<LiveUpdatesOptions<V>, 'repository' | 'logger' | 'loadBalance'>;
  /** Publishes AlertFired at the alert's exactly-once point. */
  events?: EventPublisher<AlertEvents>;
  onFired?: AlertServiceOptions['onFired'];
}

/** The live side first: the service serves this instance's subscribers from its write path. */
export function createAlerts<V>({
  db,
  logger,
  counters,
  loadBalance,
  accountEntitlements,
  entitlementNow,
  live,
  events,
  onFired,
}: AlertsDeps<V>) {
  const repository = new AlertRepository(db);
  const moduleLogger = logger.child({ module: 'alerts' });
  const liveUpdates = new LiveUpdates<V>({ repository, logger: moduleLogger, loadBalance, ...live });
  const alerts = new AlertService(repository, counters, moduleLogger, {
    accountEntitlements,
    entitlementNow,
    localDelivery: liveUpdates.localDelivery,
    events,
    onFired,
  });
  return { alerts, live: liveUpdates };
}
