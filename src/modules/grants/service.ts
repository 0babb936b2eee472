import type { Logger } from '../../logger.js';
import { BadInputError, IdempotencyKeyReusedError, NotFoundError } from '../../shared/errors.js';
import type { EventPublisher } from '../../shared/events.js';
import type { Micros } from '../../shared/quantity.js';
import type { Actor, AuditLog } from '../audit/index.js';
import type { CatalogReads } from '../catalog/index.js';
import type { GrantedSource, EffectiveTerms } from '../entitlements/index.js';
import { grantedInPeriod, standingIn, type BurnLedger } from './burn.js';
import { BurnLedgers, groupByPair, toBurnGrant, type LedgerRequest, type TermsAt } from './ledger.js';
import type { GrantAction, GrantCounters, GrantDoc, GrantEvents } from './model.js';
import { grantId, pairKey, type GrantRepository, type PairKey } from './repository.js';
import { parseReason, sameRequest, validateIssueGrant, type IssueGrantInputShape } from './validation.js';
import { awaitUsageSettled, SETTLE_MARGIN_MS } from './settle.js';
import { grantWindow, isActiveAt, isEmptyWindow, startAtIssue } from './window.js';
import { explainBurn } from './explain.js';
import { auditSnapshot, viewOf, type BurnExplanation, type GrantListing, type GrantView } from './views.js';

export type { BurnExplanation, GrantListing, GrantPeriodBurnView, GrantView } from './views.js';

export interface GrantServiceDeps {
  repository: GrantRepository;
  audit: AuditLog;
  catalog: CatalogReads;
  /** The entitlements module's term resolution; a fresh resolver per operation. */
  openTerms: () => TermsAt;
  /** The usage module's counters: the hour a void cuts, and the periods burn reads. */
  counters: GrantCounters;
  /** Publishes GrantChanged after a grant is stored: thresholds re-arm, balances are pushed (R9). */
  events: EventPublisher<GrantEvents>;
  /**
   * The usage module: true once no usage of the pair received before `receivedBefore` is
   * still being recorded (no posting in flight). Lets a void wait for the requests that
   * may have decided with the grant before its hour's cut is read.
   */
  usageSettled: (pair: PairKey, receivedBefore: Date) => Promise<boolean>;
  /** How long a void waits for in-flight usage before reading its cut anyway. */
  settleTimeoutMs: number;
  logger: Logger;
}

/**
 * Credit grants (R5): issuing and voiding them, their figures, and the `granted` part of
 * capacity that the entitlements module (checks, views) and the usage module (the HARD
 * guard) both read through `grantedFor`, so the two always agree. Why the HARD guard (R6)
 * stays safe while grants change: docs/grants-and-audit.md, "Grants and the HARD guard".
 */
export class GrantService implements GrantedSource {
  private readonly ledgers: BurnLedgers;

  constructor(private readonly deps: GrantServiceDeps) {
    this.ledgers = new BurnLedgers({ repository: deps.repository, counters: deps.counters, openTerms: deps.openTerms });
  }

  // ---- capacity (GrantedSource) ---------------------------------------------------------

  /**
   * Granted micro-units for each terms' period at `at` (R5), bounded whatever the batch:
   * one query for the grants of every pair, and, only when a grant carries a balance from
   * an earlier period or closed earlier in this one, one query for the counters it needs
   * plus the terms (included amounts) of those earlier periods.
   */
  async grantedFor(terms: readonly EffectiveTerms[], at: Date, options: { cached?: boolean } = {}): Promise<Micros[]> {
    const metered = terms.map((entry) => (entry.period && entry.featureType === 'METERED' ? entry : null));
    const pairs = uniquePairs(metered.filter((entry): entry is EffectiveTerms => entry !== null));
    if (pairs.length === 0) return terms.map(() => 0n);
    const byPair = groupByPair(await this.deps.repository.findForPairs(pairs, options));

    const plans = metered.map((entry) => {
      if (!entry) return null;
      const grants = (byPair.get(pairKey(entry)) ?? []).map(toBurnGrant);
      const period = entry.period!;
      const counting = grants.filter((grant) => standingIn(grant, period, at) !== null);
      // A grant that started in this period and still counts adds its whole amount: no burn needed.
      const needsBurn = counting.some((grant) => grant.window.start < period.start || standingIn(grant, period, at) === 'CLOSED');
      return { entry, period, grants, counting, needsBurn };
    });
    const requests = new Map<string, LedgerRequest>();
    for (const plan of plans) {
      if (!plan?.needsBurn) continue;
      requests.set(pairKey(plan.entry), {
        pair: plan.entry,
        grants: byPair.get(pairKey(plan.entry))!,
        interest: new Set(plan.counting.map((grant) => grant.id)),
        until: at,
        known: { periodStart: plan.period.start, included: plan.entry.included },
      });
    }
    const ledgers = requests.size > 0 ? await this.ledgers.load([...requests.values()]) : new Map<string, BurnLedger>();
    return plans.map((plan) => {
      if (!plan) return 0n;
      const ledger = ledgers.get(pairKey(plan.entry)) ?? null;
      return plan.counting.reduce((sum, grant) => sum + grantedInPeriod(grant, plan.period, at, ledger), 0n);
    });
  }

  // ---- issuing and voiding --------------------------------------------------------------

  async issue(input: IssueGrantInputShape, by: Actor): Promise<GrantView> {
    const now = new Date();
    const command = validateIssueGrant(input, now);
    const featureType = (await this.deps.catalog.findFeatureTypes([command.feature])).get(command.feature);
    if (!featureType) {
      throw new BadInputError(`Unknown feature "${command.feature}": define it with defineFeature first.`, { field: 'feature' });
    }
    if (featureType !== 'METERED') {
      throw new BadInputError(
        `Feature "${command.feature}" is ${featureType}: grants add units, so only METERED features can be granted.`,
        {
          field: 'feature',
        },
      );
    }
    const id = grantId(command.accountId, command.idempotencyKey);
    const existing = await this.deps.repository.findById(id);
    if (existing) return this.repeatIssue(existing, command.fingerprint, by);

    const start = startAtIssue(command.effectiveAt, now);
    const doc: GrantDoc = {
      _id: id,
      accountId: command.accountId,
      feature: command.feature,
      kind: command.kind,
      amount: command.amount,
      priority: command.priority,
      effectiveAt: start.effectiveAt,
      expiresAt: command.expiresAt,
      // Read before the insert: usage counted until then is before the grant, whatever
      // lands between the read and the insert was decided without the grant too.
      startCut: start.cutAt
        ? { at: start.cutAt, units: await this.deps.counters.hourUsedAt(command.accountId, command.feature, start.cutAt) }
        : null,
      reason: command.reason,
      issuedBy: by.actor,
      issuedAt: now,
      requestId: by.requestId,
      idempotencyKey: command.idempotencyKey,
      request: command.fingerprint,
      ...(input.price ? { price: input.price } : {}),
      voidedAt: null,
      voidedBy: null,
      voidReason: null,
      voidRequestId: null,
      voidCut: null,
      // Owed in the same write as the fact, cleared once published (afterCapacityChange).
      announce: ['issued'],
      announceSince: now,
    };
    const window = grantWindow(doc);
    if (isEmptyWindow(window)) {
      throw new BadInputError(
        `This grant would never count: at one-hour resolution it runs from ${window.start.toISOString()} to ${window.end!.toISOString()}. ` +
          'A future or earlier-hour effectiveAt starts at the next whole hour and expiresAt ends at the whole hour before it; widen the window.',
        { field: 'expiresAt' },
      );
    }
    if (!(await this.deps.repository.insert(doc))) {
      const raced = await this.deps.repository.findById(id);
      if (!raced) throw new Error(`grant ${id} collided on insert but cannot be read back`);
      return this.repeatIssue(raced, command.fingerprint, by);
    }
    await this.deps.audit.record({
      actor: by.actor,
      requestId: by.requestId,
      accountId: doc.accountId,
      action: 'grant.issued',
      targetType: 'Grant',
      targetId: doc._id,
      before: null,
      after: auditSnapshot(doc),
    });
    await this.afterCapacityChange(doc, isActiveAt(window, new Date()), 'issued');
    return this.view(doc);
  }

  /** Same key: the same request gets the original grant back (audited); another is refused. */
  private async repeatIssue(existing: GrantDoc, fingerprint: GrantDoc['request'], by: Actor): Promise<GrantView> {
    if (!sameRequest(existing.request, fingerprint)) {
      throw new IdempotencyKeyReusedError(
        `idempotencyKey "${existing.idempotencyKey}" already issued grant ${existing._id} with a different payload; use a new key for a different grant.`,
      );
    }
    await this.deps.audit.record({
      actor: by.actor,
      requestId: by.requestId,
      accountId: existing.accountId,
      action: 'grant.issue_repeated',
      targetType: 'Grant',
      targetId: existing._id,
      before: null,
      after: { idempotencyKey: existing.idempotencyKey, originalRequestId: existing.requestId },
    });
    // Again, for reactions the first attempt may have missed (it may have died before them).
    await this.afterCapacityChange(existing, false, 'issued');
    return this.view(existing);
  }

  /**
   * Voids a grant from now on (R5): it stops counting at this instant, and what it burned
   * before stays burned. Repeating the same void (same reason) is a safe retry: the
   * grant comes back as first voided, and the repeat is audited. A different reason is
   * refused, since a void cannot be changed.
   *
   * Two writes, so that the void's split of its hour (the cut) includes every event that
   * was decided while the grant still applied: first `voidedAt` (from then on no decision
   * counts on the grant in the void's hour or later: decisionWindow), then, once the
   * usage requests received until then have settled, the hour's usage is read and stored
   * as the cut. A request that read the grant before the void has stored its posting
   * by then (see SETTLE_MARGIN_MS), so it is among those awaited. Until the cut is
   * written burn, too, ends the grant at the start of the void's hour, which is never
   * generous; a retry of the void completes a cut that a crash left out. A void thus
   * takes a little over a second.
   */
  async void(id: string, reasonText: string, by: Actor): Promise<GrantView> {
    const reason = parseReason(reasonText, 'reason');
    const found = await this.deps.repository.findById(id);
    if (!found) throw new NotFoundError(`No grant "${id}". Account.grants lists an account's grants with their ids.`);
    if (found.voidedAt) return this.repeatVoid(found, reason, by);

    const voidedAt = new Date();
    const fields = { voidedAt, voidedBy: by.actor, voidReason: reason, voidRequestId: by.requestId };
    const before = await this.deps.repository.markVoided(found, fields);
    if (!before) return this.repeatVoid((await this.deps.repository.findById(id))!, reason, by);
    await awaitUsageSettled(this.deps, before, new Date(Date.now() + SETTLE_MARGIN_MS));
    const voided = await this.completeVoidCut({ ...before, ...fields, announce: [...(before.announce ?? []), 'voided'] });
    await this.deps.audit.record({
      actor: by.actor,
      requestId: by.requestId,
      accountId: voided.accountId,
      action: 'grant.voided',
      targetType: 'Grant',
      targetId: voided._id,
      before: auditSnapshot(before),
      after: auditSnapshot(voided),
    });
    await this.afterCapacityChange(voided, false, 'voided');
    return this.view(voided);
  }

  private async repeatVoid(grant: GrantDoc, reason: string, by: Actor): Promise<GrantView> {
    if (grant.voidReason !== reason) {
      throw new BadInputError(
        `Grant ${grant._id} was already voided at ${grant.voidedAt!.toISOString()} by ${grant.voidedBy} ("${grant.voidReason}"); a void cannot be changed.`,
        { field: 'id' },
      );
    }
    const completed = await this.completeVoidCut(grant);
    await this.deps.audit.record({
      actor: by.actor,
      requestId: by.requestId,
      accountId: grant.accountId,
      action: 'grant.void_repeated',
      targetType: 'Grant',
      targetId: grant._id,
      before: null,
      after: { voidedAt: grant.voidedAt, voidedBy: grant.voidedBy, voidReason: grant.voidReason },
    });
    await this.afterCapacityChange(completed, false, 'voided');
    return this.view(completed);
  }

  private async completeVoidCut(grant: GrantDoc): Promise<GrantDoc> {
    if (grant.voidCut || !grant.voidedAt) return grant;
    const cut = { at: grant.voidedAt, units: await this.deps.counters.hourUsedAt(grant.accountId, grant.feature, grant.voidedAt) };
    await this.deps.repository.setVoidCut(grant, cut);
    return (await this.deps.repository.findById(grant._id)) ?? { ...grant, voidCut: cut };
  }

  /**
   * Capacity changed now. The grant is already stored and audited, so a failed reaction is
   * logged, not thrown: the announcement stays owed on the grant (`announce`) and the
   * announcer publishes it again (announcer.ts). Once published it is cleared. True when
   * published.
   */
  private async afterCapacityChange(grant: GrantDoc, grew: boolean, action: GrantAction): Promise<boolean> {
    try {
      await this.deps.events.publish('GrantChanged', {
        accountId: grant.accountId,
        feature: grant.feature,
        grantId: grant._id,
        grew,
        action,
        issuedBy: grant.issuedBy,
        amount: grant.amount,
        ...(grant.price ? { price: grant.price } : {}),
      });
    } catch (error) {
      this.deps.logger.warn({ err: error, grantId: grant._id, action }, 'GrantChanged reactions failed; the announcer retries');
      return false;
    }
    if (grant.announce?.includes(action)) {
      await this.deps.repository
        .clearAnnouncement(grant, action)
        .catch((error: unknown) => this.deps.logger.warn({ err: error, grantId: grant._id }, 'could not clear an announcement'));
    }
    return true;
  }

  /**
   * The announcer's retry of an owed announcement: a void's cut is completed first (the
   * process may have died before it), then GrantChanged is published again and cleared.
   */
  async reannounce(grant: GrantDoc, action: GrantAction): Promise<boolean> {
    let current = grant;
    if (action === 'voided' && grant.voidedAt && !grant.voidCut) {
      await awaitUsageSettled(this.deps, grant, new Date(grant.voidedAt.getTime() + SETTLE_MARGIN_MS));
      current = await this.completeVoidCut(grant);
    }
    return this.afterCapacityChange(current, action === 'issued' && isActiveAt(grantWindow(current), new Date()), action);
  }

  /** How long a void may still be running after its first write (the announcer waits longer). */
  get voidDurationMs(): number {
    return SETTLE_MARGIN_MS + this.deps.settleTimeoutMs;
  }

  // ---- reading ----------------------------------------------------------------------------

  /**
   * `Account.grants` for many accounts at once (one grants query, one burn computation):
   * each listing is the account's grants, oldest first, of one feature or all.
   */
  async listGrants(listings: readonly GrantListing[], now = new Date()): Promise<GrantView[][]> {
    const listed = (grant: GrantDoc, { accountId, feature }: GrantListing) =>
      grant.accountId === accountId && (!feature || grant.feature === feature);
    const grants = await this.deps.repository.findByAccounts(listings.map((listing) => listing.accountId));
    // Burn is computed for the pairs asked about only (whole pairs: burn needs all of a pair's grants).
    const views = await this.views(
      grants.filter((grant) => listings.some((listing) => listed(grant, listing))),
      now,
    );
    return listings.map((listing) =>
      views.filter((view) => listed(view.doc, listing) && (!listing.activeOnly || view.status === 'ACTIVE' || view.status === 'PENDING')),
    );
  }

  async view(grant: GrantDoc, now = new Date()): Promise<GrantView> {
    const others = await this.deps.repository.findForPairs([grant]);
    const all = others.some((doc) => doc._id === grant._id)
      ? others.map((doc) => (doc._id === grant._id ? grant : doc))
      : [...others, grant];
    return (await this.views(all, now, new Set([grant._id])))[0]!;
  }

  /** Figures of `grants` (all of a pair's grants must be among them), as of `now`. */
  private async views(grants: readonly GrantDoc[], now: Date, only?: ReadonlySet<string>): Promise<GrantView[]> {
    const byPair = groupByPair(grants);
    const wanted = grants.filter((grant) => !only || only.has(grant._id));
    const requests = [...byPair.values()]
      .filter((docs) => docs.some((doc) => !only || only.has(doc._id)))
      .map((docs) => ({
        pair: docs[0]!,
        grants: docs,
        interest: new Set(docs.filter((doc) => !only || only.has(doc._id)).map((doc) => doc._id)),
        until: now,
      }));
    const ledgers = await this.ledgers.load(requests);
    return wanted.map((doc) => viewOf(doc, ledgers.get(pairKey(doc))?.burned.get(doc._id) ?? 0n, now));
  }

  /**
   * The burn of one period, line by line (explain.ts). `at` (default now) picks the period
   * containing it.
   */
  explain(pair: PairKey, at: Date | null, now = new Date()): Promise<BurnExplanation> {
    return explainBurn({ ...this.deps, ledgers: this.ledgers }, pair, at, now);
  }

  /**
   * R14: the grants of one pair issued under keys starting with `keyPrefix` (auto top-ups
   * name theirs deterministically), oldest first.
   */
  async issuedUnder(pair: PairKey, keyPrefix: string): Promise<GrantDoc[]> {
    const grants = await this.deps.repository.findForPairs([pair]);
    return grants.filter((grant) => grant.idempotencyKey.startsWith(keyPrefix)).sort((a, b) => a.issuedAt.getTime() - b.issuedAt.getTime());
  }
}

function uniquePairs(entries: readonly PairKey[]): PairKey[] {
  const pairs = new Map<string, PairKey>();
  for (const entry of entries) pairs.set(pairKey(entry), { accountId: entry.accountId, feature: entry.feature });
  return [...pairs.values()];
}
