import type { CounterChange } from './model.js';

export type CounterChangeListener = (change: CounterChange) => void | Promise<void>;

/**
 * Where the alerts module (issue 7) plugs in. Every counter change is published here at
 * the exactly-once point: after the counter update and before the posting is settled, so
 * a crash between the two makes recovery publish it again. Listeners must therefore be
 * idempotent (unique alert ids per account, feature, period, threshold and arm epoch).
 * A listener that throws fails the operation, which recovery then retries: an alert is
 * never silently lost.
 */
export class CounterHooks {
  private readonly listeners = new Set<CounterChangeListener>();

  /** Registers a listener; returns its unregistration. */
  onCounterChange(listener: CounterChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async publish(changes: readonly CounterChange[]): Promise<void> {
    if (this.listeners.size === 0 || changes.length === 0) return;
    for (const listener of this.listeners) {
      for (const change of changes) await listener(change);
    }
  }
}
