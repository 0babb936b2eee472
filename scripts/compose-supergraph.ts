/**
 * Composes the supergraph Apollo Router serves in the local stack (docker/compose.yaml):
 * Allotment's schema.graphql plus the reference accounts subgraph, with Apollo's own
 * composition (@apollo/composition, the library Rover's `supergraph compose` runs).
 *
 *   npx tsx scripts/compose-supergraph.ts                 # prints the supergraph
 *   npx tsx scripts/compose-supergraph.ts --out <file>    # writes it
 *   npm run supergraph                                    # writes docker/router/supergraph.graphql
 *
 * docker/compose.yaml runs this in its one-shot `supergraph` service, so `docker compose
 * up` always routes the schema it just built. Routing URLs are the compose service names.
 */
import { readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { composeServices } from '@apollo/composition';
import { parse } from 'graphql';

export interface SubgraphSource {
  name: string;
  sdl: string;
  url: string;
}

const root = fileURLToPath(new URL('..', import.meta.url));

/** Where `npm run supergraph` writes it; `npm run stack` serves it (gateway.config.ts). */
export const SUPERGRAPH_PATH = 'docker/router/supergraph.graphql';

/** The two subgraphs of the local stack, read from the working tree. */
export function localStackSubgraphs(): SubgraphSource[] {
  return [
    { name: 'allotment', sdl: readFileSync(`${root}schema.graphql`, 'utf8'), url: 'http://allotment:4001/graphql' },
    {
      name: 'accounts',
      sdl: readFileSync(`${root}docker/accounts-subgraph/schema.graphql`, 'utf8'),
      url: 'http://accounts:4010/graphql',
    },
  ];
}

/** Apollo's composition; throws with every composition error when it fails. */
export function composeWithApollo(subgraphs: readonly SubgraphSource[]): string {
  const result = composeServices(subgraphs.map(({ name, sdl, url }) => ({ name, typeDefs: parse(sdl), url })));
  if (result.errors) {
    throw new Error(`Apollo composition failed:\n${result.errors.map((error) => `- ${error.message}`).join('\n')}`);
  }
  return result.supergraphSdl;
}

function isMain(): boolean {
  return process.argv[1] !== undefined && realpathSync(fileURLToPath(import.meta.url)) === realpathSync(resolve(process.argv[1]));
}

if (isMain()) {
  const outIndex = process.argv.indexOf('--out');
  const out = outIndex >= 0 ? process.argv[outIndex + 1] : undefined;
  if (outIndex >= 0 && !out) {
    console.error('usage: compose-supergraph.ts [--out <file>]');
    process.exit(2);
  }
  try {
    const supergraph = composeWithApollo(localStackSubgraphs());
    if (out) {
      writeFileSync(out, supergraph.endsWith('\n') ? supergraph : `${supergraph}\n`);
      console.error(`supergraph written to ${out}`);
    } else {
      process.stdout.write(supergraph.endsWith('\n') ? supergraph : `${supergraph}\n`);
    }
  } catch (error) {
    console.error((error as Error).message);
    process.exit(1);
  }
}
