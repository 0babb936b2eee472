/**
 * Add-ons attached to contracts (R17). The contract document keeps every segment: the
 * pinned add-on version (a copy: versions are immutable), the quantity and the interval
 * [effectiveAt, endsAt). Attaching a key that is attached already changes its quantity
 * from `effectiveAt` on: the open segment ends there and a new one starts, with the same
 * pinned version (like a plan pin, publishing a new add-on version changes nothing for
 * contracts until they detach and attach again). Detaching ends the open segment.
 *
 * Like plan changes, a date inside a billing period whose invoice is final is refused
 * (`finalizedThrough`, docs/rating.md), and segments only move forward in time. Each write
 * is a compare-and-set on the contract's revision, audited, and announced as TermsChanged.
 */
import { BadInputError, NotFoundError } from '../../shared/errors.js';
import { formatQuantity, MAX_TERM_UNITS, MICROS_PER_UNIT } from '../../shared/quantity.js';
import type { Logger } from '../../logger.js';
import type { EventPublisher } from '../../shared/events.js';
import type { Actor, AuditLog } from '../audit/index.js';
import { type AddOnVersionDoc, type CatalogReads, parseKey } from '../catalog/index.js';
import type { AddOnSegment, ContractDoc } from './model.js';
import { planPinAt } from './plan-history.js';
import { compareAndSet } from './compare-and-set.js';
import type { ContractRepository } from './repository.js';
import { contractsNow } from './trials.js';

const MAX_SEGMENTS = 200;
/** An add-on's included amount × quantity stays within what one term may hold. */
const MAX_INCLUDED = MAX_TERM_UNITS * MICROS_PER_UNIT;
const MAX_QUANTITY = 1_000_000;
const WRITE_ATTEMPTS = 8;

export interface ContractAddOnsDeps {
  repository: ContractRepository;
  catalog: CatalogReads;
  audit: AuditLog;
  events: EventPublisher<{ TermsChanged: { accountId: string; contractId: string } }>;
  logger: Logger;
}

/** The segments of an add-on key in force at `at`: effectiveAt <= at < endsAt. */
export function addOnsAt(contract: ContractDoc, at: Date): AddOnSegment[] {
  const t = at.getTime();
  return (contract.addOns ?? []).filter(
    (segment) => segment.effectiveAt.getTime() <= t && (segment.endsAt === null || t < segment.endsAt.getTime()),
  );
}

function openSegment(contract: ContractDoc, key: string): AddOnSegment | undefined {
  return (contract.addOns ?? []).find((segment) => segment.addOn.key === key && segment.endsAt === null);
}

export class ContractAddOns {
  constructor(private readonly deps: ContractAddOnsDeps) {}

  /** Attaches `quantity` units of the add-on's latest version, or changes the quantity of the attached one. */
  async attach(
    args: { contractId: string; addOnKey: string; quantity?: number | null; effectiveAt?: Date | null },
    by: Actor,
  ): Promise<ContractDoc> {
    const key = parseKey(args.addOnKey, 'addOnKey');
    const quantity = args.quantity ?? 1;
    if (!Number.isInteger(quantity) || quantity < 1 || quantity > MAX_QUANTITY) {
      throw new BadInputError(`quantity must be a whole number from 1 to ${MAX_QUANTITY}; got ${quantity}. Use detachAddOn to remove it.`, {
        field: 'quantity',
      });
    }
    return this.mutate(args.contractId, 'contract.add_on_attached', by, async (contract) => {
      const effectiveAt = this.checkDate(contract, key, args.effectiveAt ?? new Date());
      const open = openSegment(contract, key);
      const addOn = open?.addOn ?? (await this.latest(key));
      const plan = await this.deps.catalog.findPlanVersion(
        planPinAt(contract, effectiveAt).planKey,
        planPinAt(contract, effectiveAt).planVersion,
      );
      if (plan && plan.currency !== addOn.currency) {
        throw new BadInputError(
          `Add-on ${addOn.key}@${addOn.version} is priced in ${addOn.currency} but contract "${contract._id}" bills in ${plan.currency}; publish a ${plan.currency} add-on.`,
          { field: 'addOnKey' },
        );
      }
      if (plan && plan.billingPeriod !== addOn.billingPeriod) {
        throw new BadInputError(
          `Add-on ${addOn.key}@${addOn.version} is billed per ${addOn.billingPeriod} but contract "${contract._id}" per ${plan.billingPeriod}; publish an add-on with billingPeriod ${plan.billingPeriod}.`,
          { field: 'addOnKey' },
        );
      }
      const tooLarge = addOn.entitlements.find((terms) => terms.included !== null && terms.included * BigInt(quantity) > MAX_INCLUDED);
      if (tooLarge) {
        throw new BadInputError(
          `quantity ${quantity} × ${formatQuantity(tooLarge.included!)} included ${tooLarge.feature} exceeds the maximum of ${MAX_TERM_UNITS} units; attach fewer.`,
          { field: 'quantity' },
        );
      }
      if (open && open.quantity === quantity) return contract;
      const segments = (contract.addOns ?? []).flatMap((segment): AddOnSegment[] => {
        if (segment !== open) return [segment];
        // Same instant: the new quantity replaces the old one outright (no empty segment).
        return segment.effectiveAt.getTime() === effectiveAt.getTime() ? [] : [{ ...segment, endsAt: effectiveAt }];
      });
      if (segments.length >= MAX_SEGMENTS) {
        throw new BadInputError(`Contract "${contract._id}" already has ${MAX_SEGMENTS} add-on segments; start a new contract.`, {
          field: 'addOnKey',
        });
      }
      return { ...contract, addOns: [...segments, { addOn, quantity, effectiveAt, endsAt: null }] };
    });
  }

  /** Ends the attached add-on at `effectiveAt` (default now). */
  async detach(args: { contractId: string; addOnKey: string; effectiveAt?: Date | null }, by: Actor): Promise<ContractDoc> {
    const key = parseKey(args.addOnKey, 'addOnKey');
    return this.mutate(args.contractId, 'contract.add_on_detached', by, async (contract) => {
      const effectiveAt = this.checkDate(contract, key, args.effectiveAt ?? new Date());
      const open = openSegment(contract, key);
      if (!open) throw new BadInputError(`Add-on "${key}" is not attached to contract "${contract._id}".`, { field: 'addOnKey' });
      const segments = (contract.addOns ?? []).flatMap((segment): AddOnSegment[] => {
        if (segment !== open) return [segment];
        return segment.effectiveAt.getTime() === effectiveAt.getTime() ? [] : [{ ...segment, endsAt: effectiveAt }];
      });
      return { ...contract, addOns: segments };
    });
  }

  private async latest(key: string): Promise<AddOnVersionDoc> {
    const addOn = await this.deps.catalog.findLatestAddOnVersion?.(key);
    if (!addOn) throw new BadInputError(`Unknown add-on "${key}": publish it with publishAddOn first.`, { field: 'addOnKey' });
    return addOn;
  }

  /** The same date rules as a plan change: within the contract, not in a final period, never before the key's last change. */
  private checkDate(contract: ContractDoc, key: string, effectiveAt: Date): Date {
    const t = effectiveAt.getTime();
    const fail = (why: string) => {
      throw new BadInputError(`effectiveAt (${effectiveAt.toISOString()}) ${why}`, { field: 'effectiveAt' });
    };
    if (t < contract.startsAt.getTime()) fail(`is before the contract starts (${contract.startsAt.toISOString()}).`);
    if (contract.endsAt && t >= contract.endsAt.getTime()) fail(`is not before the contract ends (${contract.endsAt.toISOString()}).`);
    const finalized = contract.finalizedThrough ?? null;
    if (finalized && t < finalized.getTime()) {
      fail(
        `falls in a billing period whose invoice is final (finalised through ${finalized.toISOString()}); use ${finalized.toISOString()} or later.`,
      );
    }
    const last = (contract.addOns ?? [])
      .filter((segment) => segment.addOn.key === key)
      .reduce((latest, segment) => Math.max(latest, segment.effectiveAt.getTime(), segment.endsAt?.getTime() ?? 0), 0);
    if (t < last)
      fail(`is before the last change of add-on "${key}" (${new Date(last).toISOString()}); add-on history only moves forward.`);
    return effectiveAt;
  }

  private async mutate(
    contractId: string,
    action: 'contract.add_on_attached' | 'contract.add_on_detached',
    by: Actor,
    change: (contract: ContractDoc) => Promise<ContractDoc>,
  ): Promise<ContractDoc> {
    const { collection } = this.deps.repository;
    for (let attempt = 0; attempt < WRITE_ATTEMPTS; attempt++) {
      const stored = await collection.findOne({ _id: contractId });
      if (!stored) throw new NotFoundError(`Contract "${contractId}" does not exist; create it with upsertContract.`);
      const [existing] = contractsNow([stored], new Date());
      const next = await change(existing!);
      // Nothing to store (the same quantity again): audited all the same, as every mutation is (R10).
      const written = next === existing ? next : await compareAndSet(this.deps.repository, stored, next);
      if (!written) continue;
      await this.deps.audit.record({
        actor: by.actor,
        action,
        targetType: 'Contract',
        targetId: written._id,
        accountId: written.accountId,
        before: { addOns: (stored.addOns ?? []).map(segmentEntry) },
        after: { addOns: (written.addOns ?? []).map(segmentEntry) },
        requestId: by.requestId,
      });
      await this.deps.events
        .publish('TermsChanged', { accountId: written.accountId, contractId: written._id })
        .catch((error: unknown) =>
          this.deps.logger.warn({ err: error, contractId, action }, 'could not re-evaluate terms after an add-on change'),
        );
      return written;
    }
    throw new Error(`${action} on "${contractId}" kept racing with concurrent writers`);
  }
}

/** What the audit trail keeps of a segment: enough to answer a dispute, without the copied terms. */
function segmentEntry(segment: AddOnSegment) {
  return {
    addOn: segment.addOn._id,
    price: segment.addOn.price,
    quantity: segment.quantity,
    effectiveAt: segment.effectiveAt,
    endsAt: segment.endsAt,
  };
}
