/**
 * The alerts module's public surface: threshold alerts (R9) and live balances.
 * - `alerts` (AlertService): the usage module's counter-change listener, `rearm` for the
 *   grants path, `onTermsChanged` after contract writes (see followContractWrites),
 *   `publishBalanceChange`, and the `Account.alerts` query.
 * - `live` (LiveUpdates): this instance's feeds and subscriber hub; start/stop with the app.
 */
import type { Db } from 'mongodb';
import type { Logger } from '../../logger.js';
import type { CounterReader } from '../usage/counters.js';
import type { BalanceLoader } from './hub.js';
import { LiveUpdates, type LiveUpdatesOptions } from './live.js';
import { AlertRepository } from './repository.js';
import { AlertService, type AlertServiceOptions } from './service.js';

export { alertIndexes } from './repository.js';
export { followContractWrites } from './contract-writes.js';
export { alertResolvers } from './resolvers.js';
export type { AlertService } from './service.js';
export type { LiveUpdates } from './live.js';
export type { CounterChange } from './model.js';

export interface AlertsDeps<V> {
  db: Db;
  logger: Logger;
  counters: CounterReader;
  /** Recomputes one live balance (the entitlements module's view). */
  loadBalance: BalanceLoader<V>;
  /** Every entitlement of an account now, for re-evaluating thresholds after terms change. */
  accountEntitlements?: AlertServiceOptions['accountEntitlements'];
  live?: Omit<LiveUpdatesOptions<V>, 'repository' | 'logger' | 'loadBalance'>;
}

export function createAlerts<V>({ db, logger, counters, loadBalance, accountEntitlements, live }: AlertsDeps<V>) {
  const repository = new AlertRepository(db);
  const moduleLogger = logger.child({ module: 'alerts' });
  const alerts = new AlertService(repository, counters, moduleLogger, { accountEntitlements });
  const liveUpdates = new LiveUpdates<V>({ repository, logger: moduleLogger, loadBalance, ...live });
  alerts.localDelivery = liveUpdates.localDelivery;
  return { alerts, live: liveUpdates };
}
