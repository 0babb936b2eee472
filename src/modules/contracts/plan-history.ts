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
import type { ContractDoc, ContractStatus, PlanPin, StatusChange } from './model.js';

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

/**
 * The statuses in time order. The first applies from `startsAt` (whatever its `at`).
 * Documents written before the history existed have one implicit entry, their current
 * status, except a CANCELED one: it is taken as ACTIVE until its cancellation, `canceledAt`
 * or else its last write (`updatedAt`), the best record of when it was canceled.
 */
export function statusesOf(contract: ContractDoc): StatusChange[] {
  if (contract.statusHistory && contract.statusHistory.length > 0) return contract.statusHistory;
  if (contract.status === 'CANCELED') {
    const at = contract.canceledAt ?? contract.updatedAt;
    if (at.getTime() > contract.startsAt.getTime()) {
      return [
        { status: 'ACTIVE', at: contract.startsAt },
        { status: 'CANCELED', at },
      ];
    }
  }
  return [{ status: contract.status, at: contract.startsAt }];
}

/** The status a contract had at `at` (the first one before any change). */
export function statusAt(contract: ContractDoc, at: Date): ContractStatus {
  const history = statusesOf(contract);
  let current = history[0]!.status;
  for (const change of history.slice(1)) {
    if (change.at.getTime() <= at.getTime()) current = change.status;
    else break;
  }
  return current;
}

/** The contract as it stood at `at` as far as status goes: what R4's merge judges access on. */
export function asOf(contract: ContractDoc, at: Date): ContractDoc {
  const status = statusAt(contract, at);
  return status === contract.status ? contract : { ...contract, status };
}

/**
 * When billing ends: `endsAt`, or the current cancellation if earlier: `canceledAt`, or
 * for a document written before it existed, the last status change (statusesOf).
 */
export function billingEnd(contract: ContractDoc): Date | null {
  const canceled = contract.status === 'CANCELED' ? canceledSince(contract) : null;
  if (!canceled) return contract.endsAt;
  if (!contract.endsAt) return canceled;
  return canceled.getTime() < contract.endsAt.getTime() ? canceled : contract.endsAt;
}

function canceledSince(contract: ContractDoc): Date {
  if (contract.canceledAt) return contract.canceledAt;
  const history = statusesOf(contract);
  const last = history.at(-1)!;
  return history.length > 1 ? last.at : contract.startsAt;
}

/**
 * The intervals the contract was CANCELED in, before its billing end: a contract that was
 * canceled and later revived pays no base fee for the time in between.
 */
export function canceledIntervals(contract: ContractDoc): Array<{ start: number; end: number }> {
  const history = statusesOf(contract);
  const intervals: Array<{ start: number; end: number }> = [];
  history.forEach((change, i) => {
    if (change.status !== 'CANCELED') return;
    const start = i === 0 ? contract.startsAt.getTime() : change.at.getTime();
    const next = history[i + 1];
    if (next) intervals.push({ start, end: next.at.getTime() });
  });
  return intervals;
}

/**
 * The contract with `status` from `now` on: a change is appended to the status history at
 * the instant it is made (never dated back), and a cancellation records `canceledAt`, where
 * billing stops. Leaving CANCELED clears it.
 */
export function withStatus(contract: ContractDoc, status: ContractStatus, now: Date): ContractDoc {
  if (status === contract.status) return contract;
  const at = new Date(Math.max(now.getTime(), contract.startsAt.getTime()));
  const history = [...statusesOf(contract), { status, at }];
  return { ...contract, status, statusHistory: history, canceledAt: status === 'CANCELED' ? at : null };
}

export function withPins(pins: PlanPin[]): Pick<ContractDoc, 'planHistory' | 'planKey' | 'planVersion'> {
  const last = pins.at(-1)!;
  return { planHistory: pins, planKey: last.planKey, planVersion: last.planVersion };
}
