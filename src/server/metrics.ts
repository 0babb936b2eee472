import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { DomainTelemetry } from '../shared/telemetry.js';

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
    // Per operation. `operation` is the root field (a schema name, so bounded), or
    // `multiple` / `unknown`; never the client-chosen operation name or an account id.
    operations: new Counter({
      name: 'allotment_graphql_operations_total',
      help: 'GraphQL operations over HTTP by root field, type and outcome (ok or error).',
      labelNames: ['operation', 'type', 'outcome'] as const,
      registers: [registry],
    }),
    operationDuration: new Histogram({
      name: 'allotment_graphql_operation_duration_seconds',
      help: 'GraphQL operation latency over HTTP by root field and type, from request to response.',
      labelNames: ['operation', 'type'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    usageEvents: new Counter({
      name: 'allotment_usage_events_total',
      help: 'Usage events by receipt status: ACCEPTED, DUPLICATE, REJECTED.',
      labelNames: ['status'] as const,
      registers: [registry],
    }),
    alertsFired: new Counter({
      name: 'allotment_alerts_fired_total',
      help: 'Threshold alerts stored by this instance (each alert fires once across instances).',
      registers: [registry],
    }),
    alertsDelivered: new Counter({
      name: 'allotment_alerts_delivered_total',
      help: 'Alerts sent to subscribers by this instance (one per subscriber).',
      registers: [registry],
    }),
    subscriberOverflows: new Counter({
      name: 'allotment_subscriber_overflows_total',
      help: 'Subscriptions ended because the subscriber fell too far behind.',
      registers: [registry],
    }),
  };
}

/** The modules' business counters, on this instance's registry. */
export function domainTelemetry(metrics: Metrics): DomainTelemetry {
  return {
    usageRecorded: (status, count) => metrics.usageEvents.inc({ status }, count),
    alertsFired: (count) => metrics.alertsFired.inc(count),
    alertDelivered: () => metrics.alertsDelivered.inc(),
    subscriberOverflow: () => metrics.subscriberOverflows.inc(),
  };
}
export type Metrics = ReturnType<typeof createMetrics>;
