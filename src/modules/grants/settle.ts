import type { Logger } from '../../logger.js';
import type { PairKey } from './repository.js';

/**
 * How far a void looks past itself for usage that may have decided with the grant. The
 * usage engine reads grants while it stores a request's posting, so such a posting may
 * appear a moment after the void; and requests are stamped by each instance's clock. The
 * void therefore waits this long, then for every request received until then to settle.
 */
export const SETTLE_MARGIN_MS = 1_000;

/** What the wait needs of the grants service's dependencies (GrantServiceDeps). */
interface SettleDeps {
  usageSettled: (pair: PairKey, receivedBefore: Date) => Promise<boolean>;
  settleTimeoutMs: number;
  logger: Logger;
}

/** Waits until `receivedBefore`, then until no usage of the pair received before it is in flight (bounded). */
export async function awaitUsageSettled(deps: SettleDeps, pair: PairKey, receivedBefore: Date): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, receivedBefore.getTime() - Date.now())));
  const deadline = Date.now() + deps.settleTimeoutMs;
  for (let delay = 5; !(await deps.usageSettled(pair, receivedBefore)); delay = Math.min(delay * 2, 100)) {
    if (Date.now() > deadline) {
      deps.logger.warn(
        { accountId: pair.accountId, feature: pair.feature },
        'voiding with usage still in flight: its cut may leave a few units uncovered',
      );
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}
