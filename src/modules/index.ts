/**
 * The composition root: builds each module through its public face, in dependency order
 * (no module is referred to before it exists), then registers every reaction to a domain
 * event in one list at the end, which reads as "what follows what".
 */
import type { Db } from 'mongodb';
import type { Config } from '../config.js';
import type { CollectionIndexes } from '../db/mongo.js';
import type { Logger } from '../logger.js';
import { EventBus } from '../shared/events.js';
import { NO_TELEMETRY, type DomainTelemetry } from '../shared/telemetry.js';
import { type AlertEvents, alertIndexes, createAlerts } from './alerts/index.js';
import { AuditLog, auditIndexes } from './audit/index.js';
import { addOnIndexes, catalogIndexes, createCatalog, createCatalogLoaders } from './catalog/index.js';
import {
  type ContractEvents,
  contractIndexes,
  createContractAddOns,
  createContractLoaders,
  createContracts,
  createContractTermsCache,
  createTrialSettler,
  type TrialEvents,
} from './contracts/index.js';
import { createEntitlementLoaders, EntitlementService, TermsService } from './entitlements/index.js';
import { createGrantLoaders, createGrants, type GrantEvents, grantIndexes } from './grants/index.js';
import { billingIndexes, createBilling } from './billing/index.js';
import { createHierarchy, type HierarchyEvents, hierarchyIndexes } from './hierarchy/index.js';
import { SegmentIngestion } from './ingestion/index.js';
import { createRating, grantCoverageFrom, invoiceIndexes, type RatingEvents } from './rating/index.js';
import { AUTO_TOP_UP_ACTOR, createTopUps, topUpIndexes } from './topups/index.js';
import { termsTimeline, type UsageEvents, UsageReads, UsageService, usageIndexes } from './usage/index.js';
import {
  createWebhooks,
  creditsToppedUp,
  grantChanged,
  invoiceFinalized,
  thresholdCrossed,
  trialEnded,
  webhookIndexes,
} from './webhooks/index.js';

export interface ModuleDeps {
  db: Db;
  config: Config;
  logger: Logger;
  /** Business counters (the server's metrics); none by default. */
  telemetry?: DomainTelemetry;
}

/** Every domain event, by the module that publishes it. */
export type DomainEvents = UsageEvents & ContractEvents & TrialEvents & GrantEvents & HierarchyEvents & AlertEvents & RatingEvents;

export function createServices({ db, config, logger, telemetry = NO_TELEMETRY }: ModuleDeps) {
  const events = new EventBus<DomainEvents>();
  const audit = new AuditLog(db);

  // Features and versioned plans (R1, R2); contracts pinning them (R3), publishing TermsChanged.
  const catalog = createCatalog(db, audit);
  // The hot path's contracts, cached with bounded staleness; every contract write path tells it.
  const termsCache = createContractTermsCache({ db, logger: logger.child({ module: 'terms-cache' }), ...config.termsCache });
  // Trials (R18): a read seeing a trial end due triggers the settler; its pass catches the rest.
  const trials = createTrialSettler({
    db,
    audit,
    events,
    logger: logger.child({ module: 'trials' }),
    intervalMs: config.trialSweepMs,
    termsCache,
  });
  const contracts = createContracts({ db, catalog, audit, events, logger: logger.child({ module: 'contracts' }), trials, termsCache });
  // Add-ons attached to contracts (R17); publishes TermsChanged.
  const contractAddOns = createContractAddOns({ db, catalog, audit, events, logger: logger.child({ module: 'contracts' }), termsCache });

  // Account hierarchies and members' caps (R13); publishes HierarchyChanged. Lineages are cached like contracts.
  const hierarchy = createHierarchy({ db, audit, events, logger: logger.child({ module: 'hierarchy' }), cache: config.termsCache });

  // Counted usage as every module reads it; the usage service below owns the writes.
  const usageReads = new UsageReads(db);

  // Merged terms (R4) from contracts and catalog; members draw on pools through the hierarchy (R13).
  const terms = new TermsService({ contracts, catalog, pools: hierarchy, cached: contracts });

  // Credit grants (R5): burn against the terms' included amounts; publish GrantChanged,
  // and again from the announcer when a publish owed was not made (R21).
  const { grants, announcer: grantAnnouncer } = createGrants({
    db,
    audit,
    catalog,
    counters: usageReads,
    events,
    // One set of loaders per grants operation.
    openTerms: () => {
      const sources = terms.newSources();
      return (requests, at) => terms.resolveTerms(requests, at, sources);
    },
    usageSettled: async ({ accountId, feature }, receivedBefore) =>
      !(await usageReads.hasUsageInFlight(accountId, feature, receivedBefore)),
    settleTimeoutMs: config.usageLeaseMs + 2_000,
    logger: logger.child({ module: 'grants' }),
  });

  // Balances and decisions (R4-R6): terms, plus `used` from the counters and `granted`.
  const entitlements = new EntitlementService({ terms, counters: usageReads, granted: grants });

  // Usage recorded exactly once (R6-R8), enforced with the same terms and grants as checks;
  // publishes CounterChanged at its exactly-once point.
  const usage = new UsageService({
    db,
    audit,
    events,
    logger,
    leaseMs: config.usageLeaseMs,
    retentionDays: config.retentionDays,
    // One set of loaders per usage request: a batch with many timestamps reads contracts once.
    openTerms: () => {
      const sources = terms.hotSources();
      return termsTimeline(
        (requests, at) => terms.resolveWithPools(requests, at, sources),
        (accountId) => sources.contractsByAccount.load(accountId),
      );
    },
    granted: (entries, at) => grants.grantedFor(entries, at),
    telemetry,
  });

  // Auto top-ups of credit features (R14): PREPAID grants once per crossing of `below`.
  const topUps = createTopUps({
    db,
    audit,
    logger: logger.child({ module: 'topups' }),
    featureType: async (feature) => (await catalog.findFeatureTypes([feature])).get(feature) ?? null,
    balance: async (pair) => {
      const view = await entitlements.entitlementNow(pair);
      return view && { hasAccess: view.terms.hasAccess, remaining: view.remaining, periodStart: view.terms.period?.start ?? null };
    },
    issuedUnder: async (pair, prefix) => (await grants.issuedUnder(pair, prefix)).length,
    issue: (input, by) => grants.issue(input, by),
    repairIntervalMs: 2_000,
  });

  // Threshold alerts (R9) and live balances, across instances.
  const { alerts, live } = createAlerts({
    db,
    logger,
    counters: usageReads,
    loadBalance: (accountId, feature) => entitlements.entitlementNow({ accountId, feature }),
    accountEntitlements: (accountId) => entitlements.accountEntitlements(accountId),
    entitlementNow: (pair) => entitlements.entitlementNow(pair),
    live: { feedMode: config.liveFeed },
    events,
    onFired: (count) => telemetry.alertsFired(count),
  });

  // Invoices (R12) from the counters and the grants' burn; finalising marks the usage
  // periods final, so later usage there is flagged late (R8).
  const rating = createRating({
    db,
    contracts,
    catalog,
    counters: usageReads,
    audit,
    grantCoverage: grantCoverageFrom(grants),
    lateUsage: (counterIds) => usage.lateUsage(counterIds),
    markPeriodFinal: (counter, at) => usage.markPeriodFinal(counter, at),
    settleTimeoutMs: config.usageLeaseMs + 3_000,
    logger: logger.child({ module: 'rating' }),
    events,
  });

  // Integrations (R21-R23): the webhook outbox and its dispatcher, Stripe sync, Segment.
  const { webhooks, dispatcher } = createWebhooks({ db, audit, logger, options: config.webhooks });
  const billing = createBilling({
    db,
    audit,
    logger: logger.child({ module: 'billing' }),
    stripe: config.stripe,
    syncOnFinalize: config.stripe.syncOnFinalize,
    invoiceOf: async (contractId, periodStart) => {
      const [contract] = await contracts.findByIds([contractId]);
      return contract ? rating.preview(contract, periodStart) : null;
    },
  });
  const segment = new SegmentIngestion(usage, config.segmentEvents);

  // ---- What follows what -------------------------------------------------------------
  // A counter moved (usage, at its exactly-once point): thresholds fire, balances are pushed.
  // A pool's counter (R13) also reaches the owner's members: their subscribers hear it.
  events.on('CounterChanged', async (change) =>
    alerts.onCounterChange(change.pooled ? { ...change, members: await hierarchy.descendantsOf(change.accountId) } : change),
  );
  // The credits left moved (R14): an auto top-up may be due, evaluated off the usage path.
  events.on('CounterChanged', (change) => topUps.onCounterChange(change));
  // A contract write changed terms now (R3): thresholds are re-evaluated, balances pushed.
  events.on('TermsChanged', ({ accountId }) => alerts.onTermsChanged(accountId));
  // A pool owner's terms are its members' terms too (R13): their balances are recomputed.
  events.on('TermsChanged', async ({ accountId }) => {
    for (const member of await hierarchy.descendantsOf(accountId)) await alerts.onTermsChanged(member);
  });
  // A grant was issued or voided: first its webhook outbox row (grant.issued / grant.voided),
  // then thresholds re-arm when capacity grew (R5) and balances are pushed.
  events.on('GrantChanged', async (change) => {
    const event = grantChanged(change);
    if (event) await webhooks.record(event);
  });
  // An auto top-up's grant (R14) is also credits.topped_up, recorded at the same point.
  events.on('GrantChanged', async (change) => {
    if (change.action === 'issued' && change.issuedBy === AUTO_TOP_UP_ACTOR) await webhooks.record(creditsToppedUp(change));
  });
  events.on('GrantChanged', (change) => alerts.onGrantChanged(change));
  // A grant on a pool owner is capacity its members draw on (R13): their balances are pushed.
  events.on('GrantChanged', async ({ accountId, feature }) => {
    for (const member of await hierarchy.descendantsOf(accountId)) await alerts.publishBalanceChange(member, feature);
  });
  // A move changes which pool the account (and its subtree) draws on: their balances are pushed.
  events.on('HierarchyChanged', async ({ accountId }) => {
    for (const account of [accountId, ...(await hierarchy.descendantsOf(accountId))]) await alerts.onTermsChanged(account);
  });
  // A trial ended (R18), published by the settler once the end is stored: contract.trial_ended.
  events.on('TrialEnded', (trial) => webhooks.record(trialEnded(trial)));
  // An alert was stored (awaited inside usage's exactly-once point): its webhook outbox row.
  events.on('AlertFired', (alert) => webhooks.record(thresholdCrossed(alert)));
  // An invoice was finalised (and on each repeat): invoice.finalized, and the Stripe sync when configured.
  events.on('InvoiceFinalized', async (invoice) => {
    await webhooks.record(invoiceFinalized(invoice));
    billing.onInvoiceFinalized(invoice);
  });

  return {
    events,
    audit,
    catalog,
    contracts,
    contractAddOns,
    termsCache,
    trials,
    hierarchy,
    terms,
    entitlements,
    grants,
    grantAnnouncer,
    topUps,
    usage,
    alerts,
    live,
    rating,
    webhooks,
    dispatcher,
    billing,
    segment,
    telemetry,
  };
}
export type Services = ReturnType<typeof createServices>;

export function createLoaders(services: Services) {
  const sources = { ...createContractLoaders(services.contracts), ...createCatalogLoaders(services.catalog) };
  return {
    ...sources,
    ...createEntitlementLoaders(services.entitlements, sources),
    ...createGrantLoaders(services.grants),
  };
}
export type Loaders = ReturnType<typeof createLoaders>;

export const moduleIndexes: CollectionIndexes[] = [
  auditIndexes,
  contractIndexes,
  hierarchyIndexes,
  catalogIndexes,
  addOnIndexes,
  ...alertIndexes,
  ...usageIndexes,
  grantIndexes,
  topUpIndexes,
  invoiceIndexes,
  ...webhookIndexes,
  ...billingIndexes,
];

/** Background work (feed watchers, sweepers): started once indexes exist, stopped on drain. */
export async function startWorkers(services: Services, options: { feedDb?: Db } = {}): Promise<{ stop(): Promise<void> }> {
  await services.live.start(options.feedDb);
  await services.hierarchy.membership.start();
  await services.termsCache.start();
  services.usage.startSweeper();
  services.dispatcher.start();
  services.grantAnnouncer.start();
  services.trials.start();
  services.topUps.start();
  return {
    stop: async () => {
      await services.topUps.stop();
      await services.trials.stop();
      await services.grantAnnouncer.stop();
      await services.dispatcher.stop();
      await services.termsCache.stop();
      await services.hierarchy.membership.stop();
      await services.usage.stopSweeper();
      await services.live.stop();
    },
  };
}
