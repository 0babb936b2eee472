import { BadInputError } from '../../shared/errors.js';
import { parseMoney } from '../../shared/money.js';
import { assertOnMinorUnit } from './tiers.js';

/**
 * R15: `PlanInput.minimumCommit`, the per-period floor. Omitted or null: no floor, and the
 * field stays absent so plans without one keep their stored shape. Zero is refused (it
 * would never add anything); the amount must be payable in the plan's currency.
 */
export function parseMinimumCommit(value: string | null | undefined, currency: string): { minimumCommit?: string } {
  if (value == null) return {};
  const amount = parseMoney(value, 'minimumCommit');
  if (amount.isZero()) {
    throw new BadInputError('minimumCommit must be greater than zero; omit it for a plan without a floor.', { field: 'minimumCommit' });
  }
  assertOnMinorUnit(amount, currency, 'minimumCommit');
  return { minimumCommit: amount.toFixed() };
}
