/**
 * Wires the domain modules together: their repositories and services (process-wide),
 * their DataLoaders (per request), their resolvers and the indexes they rely on.
 * A module's public surface is what it exports here; modules do not reach into each
 * other's repositories.
 */
import type { Db } from 'mongodb';
import type { Config } from '../config.js';
import type { CollectionIndexes } from '../db/mongo.js';
import type { Resolvers } from '../generated/graphql.js';
import type { Logger } from '../logger.js';
import { DateTimeScalar, DecimalScalar, JSONScalar } from '../shared/scalars.js';
import { createCatalogLoaders } from './catalog/loaders.js';
import { CatalogRepository, catalogIndexes } from './catalog/repository.js';
import { catalogResolvers } from './catalog/resolvers.js';
import { CatalogService } from './catalog/service.js';
import { createContractLoaders } from './contracts/loaders.js';
import { ContractRepository, contractIndexes } from './contracts/repository.js';
import { contractResolvers } from './contracts/resolvers.js';
import { ContractService } from './contracts/service.js';
import { createEntitlementLoaders } from './entitlements/loaders.js';
import { entitlementResolvers } from './entitlements/resolvers.js';
import { EntitlementService } from './entitlements/service.js';
import { CounterReader } from './usage/counters.js';
import { usageIndexes } from './usage/repository.js';
import { usageResolvers } from './usage/resolvers.js';
import { UsageService } from './usage/service.js';
import { termsTimeline } from './usage/timeline.js';
import { AuditLog, auditIndexes } from './audit/repository.js';
import { auditResolvers } from './audit/resolvers.js';
import { alertIndexes, alertResolvers, createAlerts, followContractWrites } from './alerts/index.js';
import { grantCoverageFrom } from './rating/grant-coverage.js';
import { InvoiceRepository, invoiceIndexes } from './rating/repository.js';
import { ratingResolvers } from './rating/resolvers.js';
import { RatingService } from './rating/service.js';
import { createGrantLoaders } from './grants/loaders.js';
import { GrantRepository, grantIndexes } from './grants/repository.js';
import { grantResolvers } from './grants/resolvers.js';
import { GrantService } from './grants/service.js';

export interface ModuleDeps {
  db: Db;
  config: Config;
  logger: Logger;
}

export function createServices({ db, config, logger }: ModuleDeps) {
  const audit = new AuditLog(db);
  const contracts = new ContractRepository(db);
  const catalogRepository = new CatalogRepository(db);
  const catalog = new CatalogService(catalogRepository, audit);
  // Contract writes change terms now: thresholds are re-evaluated and live balances pushed (R3, R9).
  const contractAdmin = followContractWrites(new ContractService(contracts, catalogRepository, audit), (accountId) => alerts.onTermsChanged(accountId), logger);
  // Credit grants (R5): the `granted` part of capacity, for checks and enforcement alike.
  // Its dependencies on entitlements and alerts are closures, called only after wiring.
  const grants: GrantService = new GrantService({
    repository: new GrantRepository(db, new CounterReader(db)),
    audit,
    catalog: catalogRepository,
    openTerms: () => {
      const sources = entitlements.newSources();
      return (requests, at) => entitlements.resolveTerms(requests, at, sources);
    },
    entitlementNow: async (pair) => (await entitlements.entitlements([pair], new Date()))[0] ?? null,
    alerts: {
      rearm: (counterId, used, capacity, thresholds) => alerts.rearm(counterId, used, capacity, thresholds),
      publishBalanceChange: (accountId, feature, counterId) => alerts.publishBalanceChange(accountId, feature, counterId),
    },
    usageSettled: async ({ accountId, feature }, receivedBefore) => !(await usage.hasUsageInFlight(accountId, feature, receivedBefore)),
    settleTimeoutMs: config.usageLeaseMs + 2_000,
    logger: logger.child({ module: 'grants' }),
  });
  const entitlements = new EntitlementService({ contracts, catalog: catalogRepository, counters: new CounterReader(db), granted: grants });
  const { alerts, live } = createAlerts({
    db,
    logger,
    counters: new CounterReader(db),
    // A live balance is the entitlement view, recomputed when the balance feed says so.
    loadBalance: async (accountId, feature) => (await entitlements.entitlements([{ accountId, feature }], new Date()))[0] ?? null,
    accountEntitlements: async (accountId) => {
      const now = new Date();
      const sources = entitlements.newSources();
      const features = await entitlements.featuresOfAccount(await sources.contractsByAccount.load(accountId), now, sources);
      return entitlements.entitlements(features.map((feature) => ({ accountId, feature })), now, sources);
    },
    live: { feedMode: config.liveFeed },
  });
  const usage = new UsageService({
    db,
    audit,
    logger,
    leaseMs: config.usageLeaseMs,
    retentionDays: config.retentionDays,
    // One set of DataLoaders per usage request: a batch with many timestamps reads contracts once.
    openTerms: () => {
      const sources = entitlements.newSources();
      return termsTimeline((requests, at) => entitlements.resolveTerms(requests, at, sources), (accountId) => sources.contractsByAccount.load(accountId));
    },
    // The same source as the entitlements service's, so checks and enforcement agree (R5).
    granted: (terms, at) => grants.grantedFor(terms, at),
  });
  // Threshold alerts and live balances follow every counter change (R9).
  usage.onCounterChange(alerts.onCounterChange);
  // Invoices (R12): rated from the counters and the grants' burn; finalising stamps the
  // usage periods final so later usage there is flagged late (R8).
  const rating = new RatingService({
    invoices: new InvoiceRepository(db),
    contracts,
    catalog: catalogRepository,
    counters: new CounterReader(db),
    audit,
    grantCoverage: grantCoverageFrom(grants),
    lateUsage: (counterIds) => usage.lateUsage(counterIds),
    markPeriodFinal: (counter, at) => usage.markPeriodFinal(counter, at),
    settleTimeoutMs: config.usageLeaseMs + 3_000,
    logger: logger.child({ module: 'rating' }),
  });
  return { audit, contracts, catalog, contractAdmin, entitlements, alerts, live, usage, grants, rating };
}
export type Services = ReturnType<typeof createServices>;

export function createLoaders(services: Services) {
  const sources = { ...createContractLoaders(services.contracts), ...createCatalogLoaders(services.catalog.repository) };
  return { ...sources, ...createEntitlementLoaders(services.entitlements, sources), ...createGrantLoaders(services.grants) };
}
export type Loaders = ReturnType<typeof createLoaders>;

export const moduleIndexes: CollectionIndexes[] = [auditIndexes, contractIndexes, catalogIndexes, ...alertIndexes, ...usageIndexes, grantIndexes, invoiceIndexes];

export const resolvers: Resolvers[] = [
  { Decimal: DecimalScalar, DateTime: DateTimeScalar, JSON: JSONScalar },
  contractResolvers,
  auditResolvers,
  catalogResolvers,
  entitlementResolvers,
  alertResolvers,
  usageResolvers,
  grantResolvers,
  ratingResolvers,
];

/** Background work (feed watchers, sweepers): started once indexes exist, stopped on drain. */
export async function startWorkers(services: Services, options: { feedDb?: Db } = {}): Promise<{ stop(): Promise<void> }> {
  await services.live.start(options.feedDb);
  services.usage.startSweeper();
  return {
    stop: async () => {
      await services.usage.stopSweeper();
      await services.live.stop();
    },
  };
}
