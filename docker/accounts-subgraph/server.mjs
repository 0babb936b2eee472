// Reference accounts subgraph for the local federated stack (docker/compose.yaml).
// Plain ESM JavaScript, no build step. PORT defaults to 4010; HOST defaults to 0.0.0.0
// (what a container needs) and can be set to 127.0.0.1 for local runs. Apollo Server
// itself stops gracefully on SIGINT/SIGTERM (stopOnTerminationSignals defaults to on).
import { readFileSync } from 'node:fs';
import { ApolloServer } from '@apollo/server';
import { startStandaloneServer } from '@apollo/server/standalone';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { parse } from 'graphql';
import { resolvers } from './resolvers.mjs';

const typeDefs = parse(readFileSync(new URL('./schema.graphql', import.meta.url), 'utf8'));
const port = Number(process.env.PORT ?? 4010);
const host = process.env.HOST ?? '0.0.0.0';

const server = new ApolloServer({
  schema: buildSubgraphSchema([{ typeDefs, resolvers }]),
});

const { url } = await startStandaloneServer(server, { listen: { port, host } });
console.log(`accounts subgraph ready at ${url}graphql`);
