/**
 * The base fee of a billing period, prorated by time when the plan changed mid-cycle.
 *
 * The rule: each plan pin charges its base fee × (its milliseconds in the period ÷ the
 * period's milliseconds), counting only the time the contract is billed: from startsAt to
 * its billing end (endsAt, or `canceledAt` when canceled earlier; plan-history.ts
 * billingEnd), less any time it spent CANCELED before being revived and its trial (R18). Descriptions give the
 * share in days. Boundaries are instants, so this is "by seconds" whenever they
 * fall on whole seconds, as they do in practice. A pin that covers the whole period charges
 * its fee exactly. Prorated shares are rational numbers (10 of 31 days), so they are the
 * one thing rounded on their own line: the shares of a period are split into minor units
 * with allocateMinorUnits (half-even on their sum, largest remainder across the lines), so
 * they add up to the rounded exact sum and never drift by a cent.
 *
 * Unlike usage (whose terms are those of the pin in force at the end of the usage period,
 * R3), the base fee follows the pins through the period, including a change scheduled for
 * later in the current period: it is contractual, not measured.
 */
import { Money } from '../../shared/money.js';
import type { PlanVersionDoc } from '../catalog/index.js';
import { type ContractDoc, type PlanPin, billingEnd, canceledIntervals, pinPlanId, pinsOf, trialInterval } from '../contracts/index.js';
import { allocateMinorUnits, fromMinorUnits } from './currency.js';

export interface FeeSegment {
  planKey: string;
  planVersion: number;
  planName: string;
  /** Exact money string: the plan's fee for a whole period. */
  fee: string;
  start: Date;
  end: Date;
}

export interface BaseFeeCharge extends FeeSegment {
  /** The segment's share of the period, rounded half-even to 6 digits (informational). */
  share: Money;
  prorated: boolean;
  amount: Money;
  /** Milliseconds of the segment and of the period, for the description. */
  segmentMs: number;
  periodMs: number;
}

/** A closed billing period: base fees need its end. */
export interface BilledPeriod {
  start: Date;
  end: Date;
}

/**
 * The pins' intervals inside the period while the contract is in force; pins without a fee
 * are skipped. `feeOf` picks the per-period amount: the base fee, or the minimum commit (R15).
 */
export function baseFeeSegments(
  contract: ContractDoc,
  plans: ReadonlyMap<string, PlanVersionDoc>,
  period: BilledPeriod,
  feeOf: (plan: PlanVersionDoc) => string | null = (plan) => plan.baseFee,
): FeeSegment[] {
  const pins: PlanPin[] = pinsOf(contract);
  const lifeStart = contract.startsAt.getTime();
  const lifeEnd = billingEnd(contract)?.getTime() ?? Infinity;
  const canceled = unbilledIntervals(contract);
  const segments: FeeSegment[] = [];
  pins.forEach((pin, index) => {
    const next = pins[index + 1];
    const start = Math.max(pin.effectiveAt.getTime(), period.start.getTime(), lifeStart);
    const end = Math.min(next ? next.effectiveAt.getTime() : Infinity, period.end.getTime(), lifeEnd);
    if (end <= start) return;
    const plan = plans.get(pinPlanId(pin));
    if (!plan) throw new Error(`plan history names missing plan version ${pinPlanId(pin)}`);
    const fee = feeOf(plan);
    if (fee === null || new Money(fee).isZero()) return;
    for (const [from, to] of subtract(start, end, canceled)) {
      segments.push({
        planKey: pin.planKey,
        planVersion: pin.planVersion,
        planName: plan.name,
        fee,
        start: new Date(from),
        end: new Date(to),
      });
    }
  });
  return segments;
}

/** Time within the contract's life that is not billed: spans it was CANCELED in, and its trial (R18: no base fee for trial time). */
export function unbilledIntervals(contract: ContractDoc): Array<{ start: number; end: number }> {
  const trial = trialInterval(contract);
  return [...canceledIntervals(contract), ...(trial ? [trial] : [])];
}

/** [start, end) less the given intervals, as the pieces left in order. */
export function subtract(start: number, end: number, holes: ReadonlyArray<{ start: number; end: number }>): Array<[number, number]> {
  let pieces: Array<[number, number]> = [[start, end]];
  for (const hole of holes) {
    pieces = pieces.flatMap(([from, to]): Array<[number, number]> => {
      if (hole.end <= from || hole.start >= to) return [[from, to]];
      return [
        ...(hole.start > from ? [[from, hole.start] as [number, number]] : []),
        ...(hole.end < to ? [[hole.end, to] as [number, number]] : []),
      ];
    });
  }
  return pieces;
}

export function prorateBaseFees(segments: readonly FeeSegment[], period: BilledPeriod, currency: string): BaseFeeCharge[] {
  const periodMs = period.end.getTime() - period.start.getTime();
  const whole = (segment: FeeSegment) =>
    segment.start.getTime() === period.start.getTime() && segment.end.getTime() === period.end.getTime();
  if (segments.length === 1 && whole(segments[0]!)) {
    const segment = segments[0]!;
    return [{ ...segment, share: new Money(1), prorated: false, amount: new Money(segment.fee), segmentMs: periodMs, periodMs }];
  }
  const exact = segments.map((segment) => new Money(segment.fee).times(segment.end.getTime() - segment.start.getTime()).div(periodMs));
  const minor = allocateMinorUnits(exact, currency);
  return segments.map((segment, i) => {
    const segmentMs = segment.end.getTime() - segment.start.getTime();
    return {
      ...segment,
      share: new Money(segmentMs).div(periodMs).toDecimalPlaces(6, Money.ROUND_HALF_EVEN),
      prorated: true,
      amount: fromMinorUnits(minor[i]!, currency),
      segmentMs,
      periodMs,
    };
  });
}
