import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { ApolloServerPluginSubscriptionCallback } from '@apollo/server/plugin/subscriptionCallback';
import type { MongoClientOptions } from 'mongodb';
import type { Config } from './config.js';
import { connectDatabase, ensureIndexes, type Database } from './db/mongo.js';
import type { Logger } from './logger.js';
import { createServices, moduleIndexes, startWorkers, type Services } from './modules/index.js';
import { createAuthenticator } from './server/auth.js';
import { createContextFactory, type Context } from './server/context.js';
import { createErrorFormatter } from './server/errors.js';
import { createRequestHandler } from './server/http.js';
import { createMetrics } from './server/metrics.js';
import { buildAllotmentSchema } from './server/schema.js';
import { attachWebSocketServer } from './server/websocket.js';

export interface AllotmentOptions {
  config: Config;
  logger: Logger;
  /** The resolved database URI (MONGODB_URI or the embedded engine's). */
  mongodbUri: string;
  clientOptions?: MongoClientOptions;
}

export interface RunningAllotment {
  url: string;
  port: number;
  httpServer: Server;
  database: Database;
  services: Services;
  stop(): Promise<void>;
}

/**
 * Starts one Allotment instance: database, indexes, schema, HTTP + WebSocket on one port.
 * Several instances may run in one process (tests do), so nothing here is global.
 */
export async function startAllotment({ config, logger, mongodbUri, clientOptions }: AllotmentOptions): Promise<RunningAllotment> {
  if (config.auth.mode === 'open') {
    logger.warn(
      '!!! AUTH IS OPEN: no AUTH_JWT_SECRET or AUTH_JWKS_URL is set, so every caller has every scope. Development only. !!!',
    );
  }
  const database = await connectDatabase({ uri: mongodbUri, dbName: config.mongodbDb, logger, clientOptions });
  let indexesReady = false;
  await ensureIndexes(database.db, moduleIndexes, logger);
  indexesReady = true;

  const metrics = createMetrics();
  const services = createServices({ db: database.db, config, logger });
  // Change-stream feeds long-poll: a client of their own keeps them off request connections.
  const feedDatabase = await connectDatabase({ uri: mongodbUri, dbName: config.mongodbDb, logger, clientOptions: { ...clientOptions, appName: 'allotment-feeds' } });
  const workers = await startWorkers(services, { feedDb: feedDatabase.db });
  const authenticator = createAuthenticator(config.auth);
  const buildContext = createContextFactory({ authenticator, services, logger });
  const formatError = createErrorFormatter({ logger, metrics, exposeInternals: config.env !== 'production' });
  const schema = buildAllotmentSchema();

  const httpServer = createServer();
  const websocket = attachWebSocketServer({
    httpServer,
    schema,
    authenticator,
    buildContext,
    formatError,
    metrics,
    logger,
    maxSubscriptionsPerConnection: config.wsMaxSubscriptionsPerConnection,
  });
  const apollo = new ApolloServer<Context>({
    schema,
    formatError,
    includeStacktraceInErrorResponses: false,
    logger: logger.child({ module: 'apollo' }),
    introspection: config.env !== 'production',
    plugins: [
      ApolloServerPluginDrainHttpServer({ httpServer }),
      ApolloServerPluginSubscriptionCallback(),
      { serverWillStart: async () => ({ drainServer: () => websocket.close() }) },
      ...(config.env === 'production' ? [ApolloServerPluginLandingPageDisabled()] : []),
    ],
  });
  await apollo.start();

  httpServer.on(
    'request',
    createRequestHandler({
      apollo,
      buildContext,
      metrics,
      logger,
      isReady: async () => {
        const databaseUp = await database.ping(1_000);
        return { ready: databaseUp && indexesReady, detail: { database: databaseUp ? 'up' : 'down', indexes: indexesReady } };
      },
    }),
  );
  // Keep-alive sockets of a gateway must outlive its idle timeout, or requests race a close.
  httpServer.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(config.port, config.host, () => resolve());
  });
  const { port } = httpServer.address() as AddressInfo;
  const url = `http://${config.host}:${port}/graphql`;
  logger.info({ url }, 'Allotment subgraph listening (HTTP and graphql-ws)');

  let stopping: Promise<void> | undefined;
  return {
    url,
    port,
    httpServer,
    database,
    services,
    stop() {
      // Drain order: stop taking requests, finish in-flight ones, close sockets, then the DB.
      stopping ??= (async () => {
        await apollo.stop();
        // Closing the feed client alongside cuts its parked change-stream reads short.
        await Promise.all([workers.stop(), feedDatabase.close()]);
        await database.close();
        logger.info('Allotment stopped');
      })();
      return stopping;
    },
  };
}
