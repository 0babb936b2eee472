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
import { createContextFactory, type Context, type TransportDeps } from './server/context.js';
import { createErrorFormatter, serviceUnavailablePlugin } from './server/errors.js';
import { createRequestHandler } from './server/http.js';
import { createSseHandler, refuseHttpSubscriptionsPlugin, withSse } from './server/http-subscriptions.js';
import { createLimits } from './server/limits.js';
import { createMetrics, domainTelemetry } from './server/metrics.js';
import { observabilityPlugin } from './server/observability.js';
import { createReadiness } from './server/readiness.js';
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
    logger.warn('!!! AUTH IS OPEN: no AUTH_JWT_SECRET or AUTH_JWKS_URL is set, so every caller has every scope. Development only. !!!');
  }
  // Fail fast while the database is unreachable: requests get a retryable 503, not a hang.
  const driverOptions: MongoClientOptions = { serverSelectionTimeoutMS: config.mongodbServerSelectionTimeoutMs, ...clientOptions };
  const database = await connectDatabase({ uri: mongodbUri, dbName: config.mongodbDb, logger, clientOptions: driverOptions });
  await ensureIndexes(database.db, moduleIndexes, logger);
  // /readyz: ping + the declared indexes really exist (re-created if the database lost them), within 1 s.
  const readiness = createReadiness({ database, indexes: moduleIndexes, logger });
  readiness.markIndexesVerified();

  const metrics = createMetrics();
  const services = createServices({ db: database.db, config, logger, telemetry: domainTelemetry(metrics) });
  // Change-stream feeds long-poll: a client of their own keeps them off request connections.
  const feedDatabase = await connectDatabase({
    uri: mongodbUri,
    dbName: config.mongodbDb,
    logger,
    clientOptions: { ...driverOptions, appName: 'allotment-feeds' },
  });
  const workers = await startWorkers(services, { feedDb: feedDatabase.db });
  const authenticator = createAuthenticator(config.auth);
  const buildContext = createContextFactory({ authenticator, services, logger });
  // Request limits (depth, aliases, cost, tokens, operation budget) run before any resolver.
  const limits = createLimits(config.limits);
  const formatError = limits.wrapFormatError(
    createErrorFormatter({ logger, metrics, exposeInternals: config.env !== 'production' }),
    metrics,
  );
  const schema = buildAllotmentSchema();

  // The streaming transports share HTTP's schema, context factory and error mask.
  const transport: TransportDeps = { schema, authenticator, buildContext, formatError, metrics, logger };
  const httpServer = createServer();
  const websocket = attachWebSocketServer({
    ...transport,
    httpServer,
    maxSubscriptionsPerConnection: config.wsMaxSubscriptionsPerConnection,
    limits,
  });
  const apollo = new ApolloServer<Context>({
    schema,
    formatError,
    includeStacktraceInErrorResponses: false,
    logger: logger.child({ module: 'apollo' }),
    // main.ts owns SIGTERM/SIGINT and calls stop() once; Apollo's own handler would stop first.
    stopOnTerminationSignals: false,
    introspection: config.env !== 'production',
    validationRules: limits.validationRules,
    parseOptions: limits.parseOptions,
    plugins: [
      observabilityPlugin(metrics),
      limits.apolloPlugin,
      ApolloServerPluginDrainHttpServer({ httpServer, stopGracePeriodMillis: config.shutdownGraceMs }),
      serviceUnavailablePlugin(),
      ApolloServerPluginSubscriptionCallback(),
      refuseHttpSubscriptionsPlugin(),
      { serverWillStart: async () => ({ drainServer: () => websocket.close() }) },
      ...(config.env === 'production' ? [ApolloServerPluginLandingPageDisabled()] : []),
    ],
  });
  await apollo.start();

  // GraphQL over SSE (Hive Gateway's default subscription transport) is answered before Apollo.
  const serveSse = createSseHandler({ ...transport, hooks: limits.webSocketOptions() });
  httpServer.on(
    'request',
    withSse(
      serveSse,
      createRequestHandler({
        apollo,
        buildContext,
        authenticator,
        limits,
        metrics,
        logger,
        isReady: () => readiness.check(),
        segment: services.segment,
      }),
      logger,
    ),
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
      // Every step runs even if an earlier one fails, so clients and workers are always closed.
      stopping ??= (async () => {
        const started = Date.now();
        readiness.markStopping();
        const failures: unknown[] = [];
        const step = async (name: string, run: () => Promise<unknown>): Promise<void> => {
          try {
            await run();
          } catch (err) {
            failures.push(err);
            logger.error({ err, step: name }, 'stop step failed');
          }
        };
        // Apollo's drain: stop accepting, finish in-flight HTTP requests (closing idle
        // keep-alive sockets), close WebSocket connections with 1001.
        await step('http and websocket drain', () => apollo.stop());
        // Closing the feed client alongside cuts its parked change-stream reads short.
        await Promise.all([step('workers', () => workers.stop()), step('feed database client', () => feedDatabase.close())]);
        await step('database client', () => database.close());
        logger.info({ ms: Date.now() - started }, 'Allotment stopped');
        if (failures.length > 0) throw new AggregateError(failures, 'Allotment stopped with errors');
      })();
      return stopping;
    },
  };
}
