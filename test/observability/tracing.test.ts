/**
 * One request traced from a real Hive Gateway (its OpenTelemetry plugin) through
 * Allotment's HTTP server and GraphQL operation down to its MongoDB commands, in one W3C
 * trace that continues the caller's `traceparent`; spans land in an in-memory exporter.
 */
import { useOpenTelemetry } from '@graphql-hive/plugin-opentelemetry';
import { SpanKind } from '@opentelemetry/api';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTracing } from '../../src/tracing.js';
import { startAccountsSubgraph, startGateway } from '../support/gateway.js';
import { signToken, startTestInstance, type TestInstance } from '../support/harness.js';

const exporter = new InMemorySpanExporter();
const tracing = startTracing({ exporter, serviceName: 'allotment-under-test' });
let allotment: TestInstance;
let accounts: Awaited<ReturnType<typeof startAccountsSubgraph>>;
let gateway: Awaited<ReturnType<typeof startGateway>>;

beforeAll(async () => {
  allotment = await startTestInstance();
  accounts = await startAccountsSubgraph();
  gateway = await startGateway({
    allotmentUrl: allotment.url,
    accountsUrl: accounts.url,
    plugins: (ctx) => [useOpenTelemetry({ ...ctx, traces: true })],
  });
});
afterAll(async () => {
  await gateway?.stop();
  await accounts?.stop();
  await allotment?.stop();
  await tracing.shutdown();
});

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';

function ancestry(span: ReadableSpan, byId: Map<string, ReadableSpan>): string[] {
  const names: string[] = [];
  for (let current: ReadableSpan | undefined = span; current; ) {
    names.unshift(current.name);
    const parentId: string | undefined = current.parentSpanContext?.spanId;
    current = parentId ? byId.get(parentId) : undefined;
  }
  return names;
}

describe('tracing', () => {
  it('puts the gateway, Allotment and MongoDB spans of one request in the caller’s trace', async () => {
    exporter.reset();
    const token = await signToken();
    const response = await gateway.gateway.fetch('http://gateway.local/graphql', {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: `Bearer ${token}`,
        traceparent: `00-${TRACE_ID}-00f067aa0ba902b7-01`,
      },
      body: JSON.stringify({
        query: 'query Balance { checkEntitlement(accountId: "acct_traced", feature: "api_calls") { allowed reason } }',
      }),
    });
    expect(((await response.json()) as any).data.checkEntitlement.reason).toBe('UNKNOWN_FEATURE');
    await new Promise((resolve) => setTimeout(resolve, 100));

    const spans = exporter.getFinishedSpans().filter((span) => span.spanContext().traceId === TRACE_ID);
    const byId = new Map(spans.map((span) => [span.spanContext().spanId, span]));
    const server = spans.find((span) => span.kind === SpanKind.SERVER && span.name === 'POST /graphql');
    const operation = spans.find((span) => span.name === 'query Balance' && span.attributes['graphql.operation.type'] === 'query');
    const mongo = spans.filter((span) => span.attributes['db.system.name'] === 'mongodb');
    expect(server, spans.map((span) => span.name).join(', ')).toBeDefined();
    expect(operation).toBeDefined();
    expect(mongo.length).toBeGreaterThan(0);

    // The gateway's spans sit above Allotment's: one chain from the client's parent to a find.
    const chain = ancestry(mongo[0]!, byId);
    expect(chain.slice(-3)).toEqual(['POST /graphql', 'query Balance', mongo[0]!.name]);
    expect(chain.length).toBeGreaterThan(3);
    const gatewaySpans = chain.slice(0, -3);
    expect(
      gatewaySpans.some((name) => /subgraph|fetch|http/i.test(name)),
      gatewaySpans.join(' > '),
    ).toBe(true);
    expect(mongo[0]!.attributes).toMatchObject({ 'db.namespace': allotment.dbName, 'db.operation.name': expect.any(String) });
  });
});
