import { context, type Span, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import type { CommandFailedEvent, CommandStartedEvent, CommandSucceededEvent, MongoClient } from 'mongodb';
import { tracer } from '../tracing.js';

/** Handshake and heartbeat traffic: not the application's calls. */
const SKIPPED = new Set(['hello', 'isMaster', 'ismaster', 'ping', 'saslStart', 'saslContinue', 'buildInfo', 'endSessions']);

/**
 * A CLIENT span per MongoDB command, child of whatever span is active when the command is
 * sent (the GraphQL operation's), named `<command> <collection>` with OTel's database
 * attributes. It rides on the driver's command monitoring (`monitorCommands`), which the
 * driver emits in the caller's async context, rather than patching driver internals, so
 * it works however the driver was loaded (ESM, tsx, vitest). Statements are not recorded.
 */
export function traceCommands(client: MongoClient): void {
  const open = new Map<number, Span>();
  client.on('commandStarted', (event: CommandStartedEvent) => {
    if (SKIPPED.has(event.commandName)) return;
    const collection = event.command[event.commandName];
    const [host, port] = event.address.split(':');
    const span = tracer().startSpan(
      typeof collection === 'string' ? `${event.commandName} ${collection}` : event.commandName,
      {
        kind: SpanKind.CLIENT,
        attributes: {
          'db.system.name': 'mongodb',
          'db.namespace': event.databaseName,
          'db.operation.name': event.commandName,
          ...(typeof collection === 'string' ? { 'db.collection.name': collection } : {}),
          ...(host ? { 'server.address': host } : {}),
          ...(port ? { 'server.port': Number(port) } : {}),
        },
      },
      context.active(),
    );
    open.set(event.requestId, span);
  });
  const finish = (event: CommandSucceededEvent | CommandFailedEvent, failure?: Error) => {
    const span = open.get(event.requestId);
    if (!span) return;
    open.delete(event.requestId);
    if (failure) {
      span.recordException(failure);
      span.setStatus({ code: SpanStatusCode.ERROR, message: failure.message });
    }
    span.end();
  };
  client.on('commandSucceeded', (event) => finish(event));
  client.on('commandFailed', (event) => finish(event, event.failure));
}
