/**
 * OpenTelemetry tracing (docs/observability.md). Off unless started: without a registered
 * provider the API's tracer is a no-op, and the MongoDB command spans are not even
 * listened for. `main.ts` starts it when OTEL_EXPORTER_OTLP_ENDPOINT is set; a test starts
 * it with an in-memory exporter. Context is W3C trace context (`traceparent`), carried
 * across awaits by AsyncLocalStorage.
 */
import { context, propagation, type Tracer, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor, SimpleSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-base';

let provider: BasicTracerProvider | undefined;

export const tracingEnabled = (): boolean => provider !== undefined;

export const tracer = (): Tracer => trace.getTracer('allotment');

/** Registers the global provider, context manager and W3C propagator. Once per process. */
export function startTracing(options: { exporter: SpanExporter; serviceName?: string; batch?: boolean }): { shutdown(): Promise<void> } {
  if (provider) throw new Error('tracing already started');
  const processor = options.batch ? new BatchSpanProcessor(options.exporter) : new SimpleSpanProcessor(options.exporter);
  const started = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': options.serviceName ?? 'allotment' }),
    spanProcessors: [processor],
  });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(started);
  provider = started;
  return { shutdown: () => started.shutdown() };
}

/** OTLP over HTTP to `<endpoint>/v1/traces`, batched: what main.ts starts. */
export function startOtlpTracing(endpoint: string, serviceName = process.env.OTEL_SERVICE_NAME ?? 'allotment') {
  const exporter = new OTLPTraceExporter({ url: `${endpoint.replace(/\/$/, '')}/v1/traces` });
  return startTracing({ exporter, serviceName, batch: true });
}
