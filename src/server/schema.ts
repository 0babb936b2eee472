import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSubgraphSchema, type GraphQLResolverMap } from '@apollo/subgraph';
import { parse, type GraphQLSchema } from 'graphql';
import { resolvers } from '../modules/resolvers.js';

/** Finds the checked-in schema.graphql whether we run from src/ (tsx) or dist/src/ (node). */
export function locateSchemaFile(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let depth = 0; depth < 5; depth++) {
    const candidate = join(dir, 'schema.graphql');
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  throw new Error(`schema.graphql not found above ${fileURLToPath(import.meta.url)}`);
}

export function readSchemaSdl(): string {
  return readFileSync(locateSchemaFile(), 'utf8');
}

/** Merges the modules' resolver maps type by type (two modules may both extend Account). */
function mergeResolvers(maps: readonly object[]): GraphQLResolverMap<unknown> {
  const merged: Record<string, unknown> = {};
  for (const map of maps) {
    for (const [typeName, fields] of Object.entries(map)) {
      const existing = merged[typeName];
      merged[typeName] = existing && typeof existing === 'object' && !isScalar(fields) ? { ...existing, ...fields } : fields;
    }
  }
  return merged as GraphQLResolverMap<unknown>;
}

function isScalar(value: unknown): boolean {
  return typeof value === 'object' && value !== null && value.constructor?.name === 'GraphQLScalarType';
}

export function buildAllotmentSchema(): GraphQLSchema {
  return buildSubgraphSchema([{ typeDefs: parse(readSchemaSdl()), resolvers: mergeResolvers(resolvers) }]);
}
