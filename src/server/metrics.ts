import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * One registry per server instance (tests run several instances in one process, and the
 * global default registry would double-register).
 */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'allotment_' });
  return {
    registry,
    httpDuration: new Histogram({
      name: 'allotment_http_request_duration_seconds',
      help: 'HTTP request duration by route and status.',
      labelNames: ['route', 'status'] as const,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
      registers: [registry],
    }),
    graphqlErrors: new Counter({
      name: 'allotment_graphql_errors_total',
      help: 'GraphQL errors returned to clients, by extensions.code.',
      labelNames: ['code'] as const,
      registers: [registry],
    }),
    websocketConnections: new Gauge({
      name: 'allotment_websocket_connections',
      help: 'Open graphql-ws connections.',
      registers: [registry],
    }),
    segmentEvents: new Counter({
      name: 'allotment_segment_events_total',
      help: 'Segment calls received on /ingest/segment, by outcome (accepted, duplicate, rejected, unmapped, ignored).',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    activeSubscriptions: new Gauge({
      name: 'allotment_active_subscriptions',
      help: 'Subscriptions currently streaming over graphql-ws.',
      registers: [registry],
    }),
  };
}
export type Metrics = ReturnType<typeof createMetrics>;
