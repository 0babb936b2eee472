import type { ApolloServerPlugin } from '@apollo/server';
import { SpanStatusCode, trace } from '@opentelemetry/api';
import { Kind, type OperationDefinitionNode } from 'graphql';
import type { Context } from './context.js';
import type { Metrics } from './metrics.js';

/**
 * The label for an operation: its root field when there is one (a schema name, so the
 * label set is bounded by the schema), `multiple` for several, `unknown` before the
 * operation resolved (parse or validation failed).
 */
export function operationLabel(operation: OperationDefinitionNode | undefined | null): string {
  if (!operation) return 'unknown';
  const fields = operation.selectionSet.selections.filter((selection) => selection.kind === Kind.FIELD);
  const names = new Set(fields.map((field) => field.name.value).filter((name) => !name.startsWith('__')));
  if (names.size === 0) return fields.length > 0 ? '__introspection' : 'unknown';
  return names.size === 1 ? [...names][0]! : 'multiple';
}

/**
 * Per-operation request counts and latency for HTTP GraphQL, and the operation's span:
 * http.ts runs execution inside a `graphql.operation` span; this names it after the
 * operation (`query checkEntitlement`) and marks errors, following OTel's GraphQL
 * conventions (graphql.operation.type / .name).
 */
export function observabilityPlugin(metrics: Metrics): ApolloServerPlugin<Context> {
  return {
    async requestDidStart() {
      const started = process.hrtime.bigint();
      const span = trace.getActiveSpan();
      let operation = 'unknown';
      let type = 'unknown';
      return {
        async didResolveOperation({ operation: node, operationName }) {
          if (!node) return;
          operation = operationLabel(node);
          type = node.operation;
          span?.updateName(`${type} ${operationName ?? operation}`);
          span?.setAttributes({ 'graphql.operation.type': type, 'graphql.operation.name': operationName ?? operation });
        },
        async willSendResponse({ response, errors }) {
          const failed =
            (errors?.length ?? 0) > 0 || (response.body.kind === 'single' && (response.body.singleResult.errors?.length ?? 0) > 0);
          if (failed) span?.setStatus({ code: SpanStatusCode.ERROR });
          metrics.operations.inc({ operation, type, outcome: failed ? 'error' : 'ok' });
          metrics.operationDuration.observe({ operation, type }, Number(process.hrtime.bigint() - started) / 1e9);
        },
      };
    },
  };
}
