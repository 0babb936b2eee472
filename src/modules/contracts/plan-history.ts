/**
 * Which plan version governs a contract at an instant (R3).
 *
 * The rule: the plan in force at instant t is the last pin with `effectiveAt <= t`, and
 * its terms govern the WHOLE usage period containing t. So a mid-cycle upgrade at
 * `effectiveAt` raises `included` for the current period from its first day (the usage
 * already counted stays counted, because the counter is per period, not per pin), and a
 * pin scheduled later in the period does not apply until its instant arrives. To rate a
 * closed period, evaluate at its last instant: the pin in force then governs that period.
 */
import { planVersionId } from '../catalog/index.js';
import type { ContractDoc, PlanPin } from './model.js';

/** The pins in effect order. Documents written before plan history existed have one implicit pin. */
export function pinsOf(contract: ContractDoc): PlanPin[] {
  if (contract.planHistory && contract.planHistory.length > 0) return contract.planHistory;
  return [{ planKey: contract.planKey, planVersion: contract.planVersion, effectiveAt: contract.startsAt }];
}

/**
 * The pin in force at `at`. Before the first pin (a contract that has not started) the
 * first pin is returned, so a future contract still shows the plan it will start on.
 */
export function planPinAt(contract: ContractDoc, at: Date): PlanPin {
  const pins = pinsOf(contract);
  let current = pins[0]!;
  for (const pin of pins) {
    if (pin.effectiveAt.getTime() <= at.getTime()) current = pin;
    else break;
  }
  return current;
}

export function pinPlanId(pin: PlanPin): string {
  return planVersionId(pin.planKey, pin.planVersion);
}

/** A contract is active at t when startsAt <= t < endsAt (status is judged separately). */
export function isInForceAt(contract: ContractDoc, at: Date): boolean {
  const t = at.getTime();
  return contract.startsAt.getTime() <= t && (contract.endsAt === null || t < contract.endsAt.getTime());
}

/** Whether two [start, end) windows overlap; a null end is open. */
export function windowsOverlap(a: { startsAt: Date; endsAt: Date | null }, b: { startsAt: Date; endsAt: Date | null }): boolean {
  const aEnd = a.endsAt?.getTime() ?? Infinity;
  const bEnd = b.endsAt?.getTime() ?? Infinity;
  return a.startsAt.getTime() < bEnd && b.startsAt.getTime() < aEnd;
}
