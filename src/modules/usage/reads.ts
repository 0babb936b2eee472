import type { Db } from 'mongodb';
import { CounterReader } from './counters.js';
import { UsageLedger } from './repository.js';
import { RateWindows } from './rate-windows.js';
import type { Micros } from '../../shared/quantity.js';

/**
 * What other modules may read of counted usage, constructed before the usage service so
 * that the modules the usage engine depends on (grants) can read it too: the counters,
 * and whether usage of a pair is still being recorded.
 */
export class UsageReads extends CounterReader {
  private readonly ledger: UsageLedger;
  private readonly windows: RateWindows;

  constructor(db: Db) {
    super(db);
    this.ledger = new UsageLedger(db);
    this.windows = new RateWindows(db);
  }

  /** R19: units counted in these rate windows, for checks (nothing is written). */
  rateWindows(ids: readonly string[]): Promise<Map<string, { count: Micros; end: Date }>> {
    return this.windows.counts(ids);
  }

  /**
   * Whether usage of (account, feature) received before `receivedBefore` is still being
   * recorded. The grants module's void waits for it (a request that decided with the
   * grant must be counted before the void fixes what the grant covered).
   */
  hasUsageInFlight(accountId: string, feature: string, receivedBefore: Date): Promise<boolean> {
    return this.ledger.hasReservedPosting(accountId, feature, receivedBefore);
  }
}
