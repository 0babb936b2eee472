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
import { createContractLoaders } from './contracts/loaders.js';
import { ContractRepository, contractIndexes } from './contracts/repository.js';
import { contractResolvers } from './contracts/resolvers.js';
import { AuditLog, auditIndexes } from './audit/repository.js';
import { auditResolvers } from './audit/resolvers.js';

export interface ModuleDeps {
  db: Db;
  config: Config;
  logger: Logger;
}

export function createServices({ db }: ModuleDeps) {
  const audit = new AuditLog(db);
  const contracts = new ContractRepository(db);
  return { audit, contracts };
}
export type Services = ReturnType<typeof createServices>;

export function createLoaders(services: Services) {
  return { ...createContractLoaders(services.contracts) };
}
export type Loaders = ReturnType<typeof createLoaders>;

export const moduleIndexes: CollectionIndexes[] = [auditIndexes, contractIndexes];

export const resolvers: Resolvers[] = [
  { Decimal: DecimalScalar, DateTime: DateTimeScalar, JSON: JSONScalar },
  contractResolvers,
  auditResolvers,
];
