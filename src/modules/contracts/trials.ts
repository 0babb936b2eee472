/**
 * Trials (R18). A contract with `trialEndsAt` is TRIALING until then, and ACTIVE (or
 * CANCELED, when `trialConversion` is CANCEL) from that instant on.
 *
 * The status at an instant is derived from the document (`settleTrial`), so a check sees
 * the new status at the instant itself, whether or not anything has run: every read of the
 * contracts module applies it, and the R4 merge applies it again at the instant it judges.
 * The flip is dated `trialEndsAt` (never later, however late it is stored), so status
 * history, billing and the read-time view always agree.
 *
 * "Audited once" needs a durable step: the first write that stores the flip (the trial
 * settler's compare-and-set, or any other contract write, which stores what it read)
 * records `trialEnd` with `announced: false`. The settler then writes the audit entry under
 * an id derived from the contract and the instant (a replay inserts nothing), publishes
 * TrialEnded (its webhook row has an id derived the same way) and TermsChanged, and sets
 * `announced`. A read that sees a flip due or owed triggers the settler at once; a periodic
 * pass on every instance catches the rest. Two instances racing write one audit entry and
 * one webhook event.
 */
import { createHash } from 'node:crypto';
import { ObjectId } from 'mongodb';
import type { Logger } from '../../logger.js';
import { BadInputError } from '../../shared/errors.js';
import type { EventPublisher } from '../../shared/events.js';
import { type Periodic, startPeriodic } from '../../shared/periodic.js';
import type { AuditLog } from '../audit/index.js';
import type { ContractDoc, ContractStatus, TrialConversion } from './model.js';
import { statusesOf } from './plan-history.js';
import { compareAndSet } from './compare-and-set.js';
import type { ContractRepository } from './repository.js';

export const TRIAL_ACTOR = 'system:trial';
/** Tags the trial pass's reads, so round-trip counting in tests can tell them from a request's. */
export const TRIAL_PASS_COMMENT = 'allotment:trial-pass';
const SETTLE_ATTEMPTS = 8;
const PASS_LIMIT = 100;

/** Published once the end of a trial is stored (and again on a replay: reactions are idempotent). */
export interface TrialEnded {
  contractId: string;
  accountId: string;
  trialEndsAt: Date;
  /** ACTIVE or CANCELED. */
  status: ContractStatus;
  endedAt: Date;
}

export interface TrialEvents {
  TrialEnded: TrialEnded;
  TermsChanged: { accountId: string; contractId: string };
}

/** The status the trial converts to. */
export function trialOutcome(contract: Pick<ContractDoc, 'trialConversion'>): ContractStatus {
  return contract.trialConversion === 'CANCEL' ? 'CANCELED' : 'ACTIVE';
}

/**
 * The contract as it stands at `now` as far as its trial goes: still TRIALING past the
 * instant its trial ends, it has converted, dated at that instant (or at its last status
 * change, when that came later: a status is never dated before the change it follows).
 * Any other contract comes back as it is (the same object).
 */
export function settleTrial(contract: ContractDoc, now: Date): ContractDoc {
  if (contract.status !== 'TRIALING' || !contract.trialEndsAt) return contract;
  const history = statusesOf(contract);
  const at = new Date(Math.max(contract.trialEndsAt.getTime(), history.length > 1 ? history.at(-1)!.at.getTime() : 0));
  if (at.getTime() > now.getTime()) return contract;
  const status = trialOutcome(contract);
  return {
    ...contract,
    status,
    statusHistory: [...history, { status, at }],
    canceledAt: status === 'CANCELED' ? at : null,
    trialEnd: { at, status, announced: false },
  };
}

/** Contracts as they stand at `now` (settleTrial); `due` hears of each trial end due or still owed. */
export function contractsNow(docs: ContractDoc[], now: Date, due?: (contractId: string) => void): ContractDoc[] {
  return docs.map((doc) => {
    const settled = settleTrial(doc, now);
    if (settled !== doc || doc.trialEnd?.announced === false) due?.(doc._id);
    return settled;
  });
}

/** The trial's interval, for billing (no base fee for trial time): from startsAt to its end or its early exit. */
export function trialInterval(contract: ContractDoc): { start: number; end: number } | null {
  if (!contract.trialEndsAt) return null;
  const history = statusesOf(contract);
  if (history[0]!.status !== 'TRIALING') return null;
  const exit = history.slice(1).find((change) => change.status !== 'TRIALING');
  const end = Math.min(contract.trialEndsAt.getTime(), exit?.at.getTime() ?? Infinity);
  return end > contract.startsAt.getTime() ? { start: contract.startsAt.getTime(), end } : null;
}

export interface TrialInputShape {
  trialEndsAt?: Date | null;
  trialConversion?: TrialConversion | null;
  status?: ContractStatus | null;
  startsAt: Date;
  endsAt?: Date | null;
}

/**
 * The trial fields and status `upsertContract` writes. A `trialEndsAt` makes a new contract
 * TRIALING (unless it is sent SUSPENDED, PAST_DUE or CANCELED). On an existing contract an
 * omitted `trialEndsAt` keeps the trial; a contract still in trial stays TRIALING (the
 * input's default ACTIVE does not end it: setContractStatus does), and its trial may move
 * to a later end, or an earlier one not before now; once ended it cannot change, and a
 * TRIALING sent after the end keeps the status the trial converted to.
 */
export function trialFields(
  input: TrialInputShape,
  existing: ContractDoc | null,
  now: Date,
): { status: ContractStatus; trialEndsAt: Date | null; trialConversion: TrialConversion } {
  const requested = input.status ?? 'ACTIVE';
  const conversion = input.trialConversion ?? existing?.trialConversion ?? 'ACTIVATE';
  const trialEndsAt = input.trialEndsAt ?? existing?.trialEndsAt ?? null;
  if (!trialEndsAt) return { status: requested, trialEndsAt: null, trialConversion: conversion };
  if (input.trialEndsAt) {
    if (trialEndsAt.getTime() <= input.startsAt.getTime()) {
      throw new BadInputError(`trialEndsAt (${trialEndsAt.toISOString()}) must be after startsAt (${input.startsAt.toISOString()}).`, {
        field: 'trialEndsAt',
      });
    }
    if (input.endsAt && trialEndsAt.getTime() > input.endsAt.getTime()) {
      throw new BadInputError(`trialEndsAt (${trialEndsAt.toISOString()}) must not be after endsAt (${input.endsAt.toISOString()}).`, {
        field: 'trialEndsAt',
      });
    }
  }
  const converts = requested === 'ACTIVE' || requested === 'TRIALING';
  if (!existing) return { status: converts ? 'TRIALING' : requested, trialEndsAt, trialConversion: conversion };
  const moved = existing.trialEndsAt?.getTime() !== trialEndsAt.getTime() || (existing.trialConversion ?? 'ACTIVATE') !== conversion;
  const inTrial = existing.status === 'TRIALING';
  if (moved && !inTrial) {
    throw new BadInputError(
      `Contract "${existing._id}" is no longer in trial (status ${existing.status}); its trialEndsAt and trialConversion cannot change.`,
      { field: 'trialEndsAt' },
    );
  }
  if (moved && trialEndsAt.getTime() < now.getTime()) {
    throw new BadInputError(
      `trialEndsAt (${trialEndsAt.toISOString()}) is in the past; a trial can end now at the earliest (a status is never dated back).`,
      { field: 'trialEndsAt' },
    );
  }
  // A billing system still sending TRIALING just after the end does not restart the trial.
  if (!inTrial && requested === 'TRIALING') return { status: existing.status, trialEndsAt, trialConversion: conversion };
  return { status: inTrial && converts ? 'TRIALING' : requested, trialEndsAt, trialConversion: conversion };
}

/** An ObjectId whose first four bytes are the time, like any other, and the rest a hash of `key`. */
function derivedObjectId(at: Date, key: string): ObjectId {
  const bytes = Buffer.alloc(12);
  bytes.writeUInt32BE(Math.floor(at.getTime() / 1000), 0);
  createHash('sha256').update(key).digest().copy(bytes, 4, 0, 8);
  return new ObjectId(bytes);
}

export interface TrialSettlerDeps {
  repository: ContractRepository;
  audit: AuditLog;
  events: EventPublisher<TrialEvents>;
  logger: Logger;
  intervalMs: number;
}

/** Stores and announces trial ends, exactly once in effect (see the top of this file). */
export class TrialSettler {
  private periodic: Periodic | undefined;
  private readonly running = new Set<string>();

  constructor(private readonly deps: TrialSettlerDeps) {}

  start(): void {
    this.periodic ??= startPeriodic(
      () => this.pass(),
      this.deps.intervalMs,
      (error) => this.deps.logger.error({ err: error }, 'trial pass failed'),
    );
  }

  async stop(): Promise<void> {
    await this.periodic?.stop();
    this.periodic = undefined;
  }

  /** A read saw a trial end due or owed: settle it in the background (once per contract at a time). */
  due(contractId: string): void {
    if (this.running.has(contractId)) return;
    this.running.add(contractId);
    void this.settle(contractId)
      .catch((error: unknown) => this.deps.logger.warn({ err: error, contractId }, 'could not settle a trial end; the next pass retries'))
      .finally(() => this.running.delete(contractId));
  }

  /** One pass over trials that ended and are not stored, or not announced; how many were settled. */
  async pass(now = new Date()): Promise<number> {
    const found = await this.deps.repository.collection
      .find(
        { $or: [{ status: 'TRIALING', trialEndsAt: { $lte: now } }, { 'trialEnd.announced': false }] },
        { projection: { _id: 1 }, limit: PASS_LIMIT, comment: TRIAL_PASS_COMMENT },
      )
      .toArray();
    let settled = 0;
    for (const { _id } of found) if (await this.settle(_id, now)) settled++;
    return settled;
  }

  /** Stores the trial's end if due (compare-and-set), then announces it if owed. True when it announced. */
  async settle(contractId: string, now = new Date()): Promise<boolean> {
    const { collection } = this.deps.repository;
    for (let attempt = 0; attempt < SETTLE_ATTEMPTS; attempt++) {
      const stored = await collection.findOne({ _id: contractId });
      if (!stored) return false;
      let contract = settleTrial(stored, now);
      if (contract !== stored) {
        const written = await compareAndSet(this.deps.repository, stored, contract);
        if (!written) continue;
        contract = written;
      }
      if (!contract.trialEnd || contract.trialEnd.announced) return false;
      await this.announce(contract);
      return true;
    }
    throw new Error(`settling the trial of "${contractId}" kept racing with concurrent writers`);
  }

  private async announce(contract: ContractDoc): Promise<void> {
    const end = contract.trialEnd!;
    await this.deps.audit.recordMany(
      [
        {
          id: derivedObjectId(end.at, `contract.trial_ended\u0000${contract._id}\u0000${end.at.toISOString()}`),
          at: end.at,
          actor: TRIAL_ACTOR,
          action: 'contract.trial_ended',
          targetType: 'Contract',
          targetId: contract._id,
          accountId: contract.accountId,
          before: { status: 'TRIALING', trialEndsAt: contract.trialEndsAt },
          after: { status: end.status, trialConversion: contract.trialConversion ?? 'ACTIVATE', at: end.at },
          requestId: null,
        },
      ],
      { replay: true },
    );
    const ended: TrialEnded = {
      contractId: contract._id,
      accountId: contract.accountId,
      trialEndsAt: contract.trialEndsAt!,
      status: end.status,
      endedAt: end.at,
    };
    await this.deps.events.publish('TrialEnded', ended);
    await this.deps.events
      .publish('TermsChanged', { accountId: contract.accountId, contractId: contract._id })
      .catch((error: unknown) =>
        this.deps.logger.warn({ err: error, contractId: contract._id }, 'could not re-evaluate terms after a trial end'),
      );
    try {
      // `updatedAt` is the terms cache's feed stamp: other instances re-read the contract.
      await this.deps.repository.collection.updateOne(
        { _id: contract._id, 'trialEnd.at': end.at, 'trialEnd.announced': false },
        { $set: { 'trialEnd.announced': true, updatedAt: new Date() } },
      );
    } finally {
      this.deps.repository.touched([contract.accountId]);
    }
  }
}
