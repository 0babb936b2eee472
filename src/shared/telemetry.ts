/**
 * The business counters modules report through (docs/observability.md). A port: the
 * server implements it with prom-client (src/server/metrics.ts); modules only call it.
 * Labels stay bounded: statuses and outcomes, never an account or feature.
 */
export interface DomainTelemetry {
  /** Usage events by the receipt's status. */
  usageRecorded(status: 'ACCEPTED' | 'DUPLICATE' | 'REJECTED', count: number): void;
  /** Threshold alerts newly stored (each fires once, across instances). */
  alertsFired(count: number): void;
  /** One alert handed to one subscriber. */
  alertDelivered(): void;
  /** A subscription ended because its subscriber fell too far behind. */
  subscriberOverflow(): void;
}

export const NO_TELEMETRY: DomainTelemetry = {
  usageRecorded: () => undefined,
  alertsFired: () => undefined,
  alertDelivered: () => undefined,
  subscriberOverflow: () => undefined,
};
