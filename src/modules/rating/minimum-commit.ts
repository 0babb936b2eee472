/**
 * Minimum commit (R15): a per-billing-period floor on what the plan earns. When the
 * period's base fee plus usage charges fall below the floor, one MINIMUM_COMMIT line adds
 * the difference.
 *
 * - The floor is prorated exactly like the base fee (base-fee.ts): each plan pin in the
 *   period contributes its plan's `minimumCommit` × its share of the period, counting only
 *   the time the contract is billed, the shares split into minor units so they add up. A pin
 *   whose plan has no minimum contributes nothing; with none at all there is no line.
 * - One line per billing period, not per pin: usage is rated once for the period (its
 *   terms are those of the pin that governs its usage period, R3), so the shortfall can
 *   only be measured against the period's charges as a whole.
 * - What counts toward the floor: BASE_FEE, OVERAGE and CREDIT lines (usage charges net of
 *   grant credits). Other kinds (a previous MINIMUM_COMMIT, add-ons, top-ups) do not.
 * - At or above the floor there is no line; below it, the line's amount is exactly
 *   floor − charges (the invoice total then equals the floor before rounding).
 */
import { Money } from '../../shared/money.js';
import type { PlanVersionDoc } from '../catalog/index.js';
import type { ContractDoc } from '../contracts/index.js';
import { type BaseFeeCharge, type BilledPeriod, baseFeeSegments, prorateBaseFees } from './base-fee.js';
import { formatAmount } from './currency.js';
import { day, days, lineId } from './lines.js';
import type { InvoiceLineKind, InvoiceLineView } from './model.js';

/** Lines whose amounts count toward the floor. */
const COUNTED: ReadonlySet<InvoiceLineKind> = new Set<InvoiceLineKind>(['BASE_FEE', 'OVERAGE', 'CREDIT']);

/** The period's prorated base fees and minimum-commit floors, pin by pin. */
export function periodFees(
  contract: ContractDoc,
  plans: ReadonlyMap<string, PlanVersionDoc>,
  period: BilledPeriod,
  currency: string,
): { baseFees: BaseFeeCharge[]; minimumCommits: BaseFeeCharge[] } {
  return {
    baseFees: prorateBaseFees(baseFeeSegments(contract, plans, period), period, currency),
    minimumCommits: minimumCommitFloors(contract, plans, period, currency),
  };
}

/** Each pin's prorated share of its plan's floor in the period (empty when no pin has one). */
export function minimumCommitFloors(
  contract: ContractDoc,
  plans: ReadonlyMap<string, PlanVersionDoc>,
  period: BilledPeriod,
  currency: string,
): BaseFeeCharge[] {
  return prorateBaseFees(
    baseFeeSegments(contract, plans, period, (plan) => plan.minimumCommit ?? null),
    period,
    currency,
  );
}

/** The MINIMUM_COMMIT line, or null when there is no floor or the charges reach it. */
export function minimumCommitLine(
  contractId: string,
  period: BilledPeriod,
  currency: string,
  floors: readonly BaseFeeCharge[],
  lines: readonly InvoiceLineView[],
): InvoiceLineView | null {
  if (floors.length === 0) return null;
  const money = (amount: Money) => `${formatAmount(amount, currency)} ${currency}`;
  const floor = floors.reduce((sum, part) => sum.plus(part.amount), new Money(0));
  const charges = lines.filter((line) => COUNTED.has(line.kind)).reduce((sum, line) => sum.plus(line.amount), new Money(0));
  const shortfall = floor.minus(charges);
  if (shortfall.lessThanOrEqualTo(0)) return null;
  const parts = floors.map((part) => {
    const plan = `${part.planName} (${part.planKey} v${part.planVersion})`;
    return part.prorated
      ? `${money(part.amount)} from ${plan}, prorated ${days(part.segmentMs)} of ${days(part.periodMs)} days of ${money(new Money(part.fee))}`
      : `${money(part.amount)} from ${plan}`;
  });
  const single = floors.length === 1 ? floors[0]! : null;
  return {
    id: lineId(contractId, period.start, 'MINIMUM_COMMIT', 'period'),
    kind: 'MINIMUM_COMMIT',
    feature: null,
    description:
      `Minimum commit ${money(floor)} for ${day(period.start)} to ${day(period.end)} (${parts.join('; ')}): ` +
      `base fee and usage charges ${money(charges)}, difference ${money(shortfall)}`,
    quantity: '1',
    unitPrice: formatAmount(shortfall, currency),
    amount: formatAmount(shortfall, currency),
    periodStart: period.start,
    periodEnd: period.end,
    planKey: single?.planKey ?? null,
    planVersion: single?.planVersion ?? null,
    prorated: floors.some((part) => part.prorated),
  };
}
