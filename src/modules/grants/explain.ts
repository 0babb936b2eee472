import { BadInputError } from '../../shared/errors.js';
import type { Period } from '../../shared/periods.js';
import type { BurnLedgers, TermsAt } from './ledger.js';
import type { GrantCounters } from './model.js';
import { pairKey, type GrantRepository, type PairKey } from './repository.js';
import { explainPeriod, type BurnExplanation } from './views.js';
import { grantWindow, isEmptyWindow } from './window.js';

export interface ExplainDeps {
  repository: GrantRepository;
  counters: GrantCounters;
  openTerms: () => TermsAt;
  ledgers: BurnLedgers;
}

/**
 * The burn of one period, line by line: which grant covered how many units between
 * which instants, what the included amount covered, and what nothing covered. `at`
 * (default now) picks the period containing it.
 */
export async function explainBurn(deps: ExplainDeps, pair: PairKey, at: Date | null, now: Date): Promise<BurnExplanation> {
  const instant = at ?? now;
  const [terms] = await deps.openTerms()([pair], instant);
  const period = terms?.period ?? (await periodOfCounterAt(deps, pair, instant));
  if (!period) {
    throw new BadInputError(
      `Account "${pair.accountId}" has no usage period for "${pair.feature}" at ${instant.toISOString()}: no contract gives access then and no usage was counted. Pass an instant inside a period.`,
      { field: 'periodStart' },
    );
  }
  const grants = await deps.repository.findForPairs([pair]);
  const overlapping = grants.filter((grant) => {
    const window = grantWindow(grant);
    return (
      !isEmptyWindow(window) && (period.end === null || window.start < period.end) && (window.end === null || window.end > period.start)
    );
  });
  const ledger = (await deps.ledgers.load([{ pair, grants, interest: new Set(overlapping.map((grant) => grant._id)), until: now }])).get(
    pairKey(pair),
  );
  return explainPeriod({ ...pair, period, included: terms?.included ?? null }, overlapping, ledger, now);
}

/** Without access at an instant there are no terms to name its period; a counter there still does. */
async function periodOfCounterAt(deps: ExplainDeps, pair: PairKey, instant: Date): Promise<Period | null> {
  const counters = await deps.counters.countersFor([{ ...pair, from: instant, through: instant }]);
  const containing = counters.find(
    (counter) => counter.periodStart <= instant && (counter.periodEnd === null || instant < counter.periodEnd),
  );
  return containing ? { start: containing.periodStart, end: containing.periodEnd } : null;
}
