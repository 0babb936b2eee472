import type { EventPublisher } from '../../shared/events.js';
import type { CounterChange } from './model.js';

/**
 * What the usage module publishes. CounterChanged goes out at the exactly-once point
 * (§6 step 4): after the guarded counter update and before the posting is settled, so a
 * crash between the two makes recovery publish it again. Reactions must therefore be
 * idempotent (alerts: unique ids per account, feature, period, threshold and arm epoch).
 * A reaction that throws fails the operation, which recovery then retries: an alert is
 * never silently lost.
 */
export interface UsageEvents {
  CounterChanged: CounterChange;
}

export type UsagePublisher = EventPublisher<UsageEvents>;
