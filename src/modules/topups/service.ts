import type { Logger } from '../../logger.js';
import { BadInputError } from '../../shared/errors.js';
import { parseMoney } from '../../shared/money.js';
import { type Periodic, startPeriodic } from '../../shared/periodic.js';
import { formatQuantity, MAX_TERM_UNITS, parseQuantity, type Micros } from '../../shared/quantity.js';
import type { Actor, AuditLog } from '../audit/index.js';
import { type AutoTopUpDoc, autoTopUpId, topUpKeyPrefix } from './model.js';
import type { TopUpRepository } from './repository.js';

/** The actor of every grant an auto top-up issues (R14), in the audit trail and on the grant. */
export const AUTO_TOP_UP_ACTOR = 'system:auto-top-up';
export const TOP_UP_REPAIR_COMMENT = 'auto-top-up repair pass';
/** Tags the settings read made after a counter change (background, off the request path). */
export const TOP_UP_CHECK_COMMENT = 'auto-top-up check';

export interface AutoTopUpInputShape {
  accountId: string;
  feature: string;
  below: string;
  amount: string;
  price?: string | null;
  enabled?: boolean | null;
}

/** The credit feature's balance now, as the entitlements module computes it. */
export interface CreditBalance {
  hasAccess: boolean;
  /** Credits left in the period; null when unlimited. */
  remaining: Micros | null;
  periodStart: Date | null;
}

export interface TopUpDeps {
  repository: TopUpRepository;
  audit: AuditLog;
  logger: Logger;
  featureType: (feature: string) => Promise<string | null>;
  balance: (pair: { accountId: string; feature: string }) => Promise<CreditBalance | null>;
  /** How many grants of the pair were issued under keys starting with `keyPrefix`. */
  issuedUnder: (pair: { accountId: string; feature: string }, keyPrefix: string) => Promise<number>;
  /** The grants module's issueGrant (idempotent on the key). */
  issue: (
    input: {
      accountId: string;
      feature: string;
      amount: string;
      reason: string;
      idempotencyKey: string;
      kind: 'PREPAID';
      price: string | null;
    },
    by: Actor,
  ) => Promise<unknown>;
  repairIntervalMs: number;
}

const SETTING_CACHE_MS = 1_000;
const REPAIR_PAGE = 500;

/**
 * Auto top-ups (R14): a PREPAID grant of `amount` when the credits left fall below
 * `below`, exactly once per crossing, across instances and crashes.
 *
 * The n-th top-up of a period has a deterministic grant key (topUpKeyPrefix + n), so two
 * instances that see the same crossing issue the same grant and the grant's unique id
 * keeps one. An evaluation counts the top-ups already issued *before* it reads the
 * balance: every top-up it counted is then in the balance it reads, so it can only ask
 * for the next one if the balance is still below after all of them. A crash anywhere
 * leaves at worst a crossing not yet topped up, which the repair pass (every instance,
 * every `repairIntervalMs`) finds because the evaluation is by level, not by edge.
 */
export class AutoTopUpService {
  private readonly settings = new Map<string, { doc: AutoTopUpDoc | null; at: number }>();
  private readonly running = new Map<string, Promise<void>>();
  private readonly again = new Set<string>();
  private periodic: Periodic | undefined;
  /** Whether any setting is enabled anywhere, as of the last repair pass: none, no reads per counter change. */
  private anyEnabled = false;

  constructor(private readonly deps: TopUpDeps) {}

  async set(input: AutoTopUpInputShape, by: Actor): Promise<AutoTopUpDoc> {
    if (typeof input.accountId !== 'string' || input.accountId.length === 0 || input.accountId.length > 128) {
      throw new BadInputError('accountId must be a non-empty string of at most 128 characters.', { field: 'input.accountId' });
    }
    const type = await this.deps.featureType(input.feature);
    if (type !== 'METERED') {
      throw new BadInputError(
        type === null
          ? `Unknown feature "${String(input.feature).slice(0, 70)}": define the credit feature with defineFeature first.`
          : `Feature "${input.feature}" is ${type}: only a METERED (credit) feature can be topped up.`,
        { field: 'input.feature' },
      );
    }
    const doc: AutoTopUpDoc = {
      _id: autoTopUpId(input.accountId, input.feature),
      accountId: input.accountId,
      feature: input.feature,
      below: parseQuantity(input.below, { field: 'input.below', maxUnits: MAX_TERM_UNITS }),
      amount: parseQuantity(input.amount, { field: 'input.amount', maxUnits: MAX_TERM_UNITS }),
      price: input.price == null ? null : parseMoney(input.price, 'input.price').toFixed(),
      enabled: input.enabled ?? true,
      updatedAt: new Date(),
      updatedBy: by.actor,
    };
    const before = await this.deps.repository.replace(doc);
    await this.deps.audit.record({
      actor: by.actor,
      requestId: by.requestId,
      accountId: doc.accountId,
      action: 'auto_top_up.set',
      targetType: 'AutoTopUp',
      targetId: `${doc.accountId}/${doc.feature}`,
      before,
      after: doc,
    });
    this.settings.set(doc._id, { doc, at: Date.now() });
    if (doc.enabled) this.anyEnabled = true;
    // Already below: the first crossing is now.
    await this.evaluate(doc).catch((error: unknown) =>
      this.deps.logger.warn({ err: error, id: doc._id }, 'auto top-up failed; the repair pass retries'),
    );
    return doc;
  }

  list(accountId: string): Promise<AutoTopUpDoc[]> {
    return this.deps.repository.byAccount(accountId);
  }

  /**
   * A counter moved (CounterChanged): evaluate the pair's top-up off the usage path. It
   * never throws (a failure is logged; the repair pass catches up).
   */
  onCounterChange(change: { accountId: string; feature: string }): void {
    if (!this.anyEnabled) return;
    const id = autoTopUpId(change.accountId, change.feature);
    if (this.running.has(id)) {
      this.again.add(id);
      return;
    }
    const run = this.settingOf(id)
      .then((doc) => (doc ? this.evaluate(doc) : false))
      .then(
        () => undefined,
        (error: unknown) => this.deps.logger.warn({ err: error, id }, 'auto top-up failed; the repair pass retries'),
      )
      .finally(() => {
        this.running.delete(id);
        if (this.again.delete(id)) this.onCounterChange(change);
      });
    this.running.set(id, run);
  }

  /**
   * Issues the next top-up when the balance is below the setting's threshold; true when
   * a top-up was asked for (the grant may already have been issued by another instance).
   */
  async evaluate(setting: AutoTopUpDoc): Promise<boolean> {
    if (!setting.enabled) return false;
    const pair = { accountId: setting.accountId, feature: setting.feature };
    const first = await this.deps.balance(pair);
    if (!isBelow(first, setting.below)) return false;
    const prefix = topUpKeyPrefix(setting.feature, first!.periodStart!);
    // Count first, then read the balance: it includes every top-up counted (see the class comment).
    const issued = await this.deps.issuedUnder(pair, prefix);
    const now = await this.deps.balance(pair);
    if (!isBelow(now, setting.below) || now!.periodStart!.getTime() !== first!.periodStart!.getTime()) return false;
    await this.deps.issue(
      {
        ...pair,
        amount: formatQuantity(setting.amount),
        reason: `Auto top-up: fewer than ${formatQuantity(setting.below)} left`,
        idempotencyKey: `${prefix}${issued}`,
        kind: 'PREPAID',
        price: setting.price,
      },
      { actor: AUTO_TOP_UP_ACTOR, requestId: null },
    );
    return true;
  }

  /** The repair pass: every enabled setting, evaluated again (crossings a crash left). */
  async repair(): Promise<number> {
    let after = '';
    let asked = 0;
    for (;;) {
      const page = await this.deps.repository.enabledAfter(after, REPAIR_PAGE, TOP_UP_REPAIR_COMMENT);
      if (after === '') this.anyEnabled = page.length > 0;
      for (const setting of page) if (await this.evaluate(setting)) asked++;
      if (page.length < REPAIR_PAGE) return asked;
      after = page[page.length - 1]!._id;
    }
  }

  start(): void {
    // At once, then periodically: crossings missed while no instance ran are repaired first.
    if (!this.periodic) this.repair().catch((error: unknown) => this.deps.logger.warn({ err: error }, 'auto top-up repair pass failed'));
    this.periodic ??= startPeriodic(
      () => this.repair(),
      this.deps.repairIntervalMs,
      (error) => this.deps.logger.warn({ err: error }, 'auto top-up repair pass failed'),
    );
  }

  async stop(): Promise<void> {
    await this.periodic?.stop();
    this.periodic = undefined;
    await Promise.all([...this.running.values()]);
  }

  /** Settings change rarely and are read on every counter change: cached for a second. */
  private async settingOf(id: string): Promise<AutoTopUpDoc | null> {
    const cached = this.settings.get(id);
    if (cached && Date.now() - cached.at < SETTING_CACHE_MS) return cached.doc;
    const doc = await this.deps.repository.find(id, TOP_UP_CHECK_COMMENT);
    this.settings.set(id, { doc, at: Date.now() });
    if (this.settings.size > 10_000) this.settings.delete(this.settings.keys().next().value!);
    return doc;
  }
}

function isBelow(balance: CreditBalance | null, below: Micros): boolean {
  return balance?.hasAccess === true && balance.remaining !== null && balance.periodStart !== null && balance.remaining < below;
}
