/**
 * The usage module (R6–R8): recording usage exactly once (`recordUsage`,
 * `recordUsageBatch`), the counters it keeps per (account, feature, period), usage series
 * and reconciliation. It publishes CounterChanged at its exactly-once point; other
 * modules read counted usage through `CounterReader`, never the collections.
 */
export { UsageService, type Caller, type UsageServiceDeps } from './service.js';
export { UsageReads } from './reads.js';
export {
  CounterReader,
  isPeriodFinal,
  type CounterDoc,
  type CounterHours,
  type CounterSpan,
} from './counters.js';
export type { UsageEvents } from './events.js';
export type { CounterChange, LateUsage, UsageBatchView, UsageReceiptView } from './model.js';
export type { ReconciliationReport } from './reconcile.js';
export type { UsagePointView, UsageSeriesView } from './series.js';
export { termsTimeline } from './timeline.js';
export { MAX_BATCH_EVENTS } from './validation.js';
import { usageIndexes as ledgerIndexes } from './repository.js';
import { rateWindowIndexes } from './rate-windows.js';

/** The usage module's collections' indexes: the ledger's and R19's rate windows. */
export const usageIndexes = [...ledgerIndexes, rateWindowIndexes];
