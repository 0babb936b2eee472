/**
 * Request limits: what one GraphQL request may cost before any resolver runs.
 *
 * Layers, cheapest first (docs/limits.md has the table and the reasoning):
 *  1. HTTP body size (src/server/http.ts), checked while reading, before JSON parsing.
 *  2. Token count, checked with a lexer that stops at the limit, before parsing
 *     (`assertTokenBudget`), and again by graphql-js's own `maxTokens` parse option.
 *  3. graphql-armor validation rules: depth, aliases, directives and static cost, run with
 *     the standard validation rules, so before execution.
 *  4. The operation budget (`checkOperationBudget`): list arguments whose per-field caps
 *     must hold for the whole operation (checks, usage events, entity representations).
 *
 * Why (4) is not a validation rule: validation sees the document only, and Apollo caches
 * validated documents without their variables, while `checkEntitlements(checks: $checks)`
 * carries its size in a variable. A rule that counted list literals only would be bypassed
 * with variables. So the budget is computed after validation and before execution, from
 * the operation's root fields and the request's raw variable values: Apollo's
 * `didResolveOperation` hook over HTTP, a wrapper around execute/subscribe over WebSocket.
 * It is a pure function of the request (document + variables), so the refusal is
 * all-or-nothing: nothing of an over-budget operation runs (a per-request counter charged
 * by resolvers would have run the first aliases before refusing the rest, half-recording a
 * mutation). Every budgeted field lives on Query or Mutation, so only root selections
 * (through fragments) need to be walked, and fields sharing a response key count once, as
 * graphql-js executes them once.
 *
 * Every refusal carries `extensions.code` QUERY_TOO_COMPLEX, `extensions.limit` (which
 * limit), `extensions.max`, and HTTP status 400 (413 for the body).
 */
import { costLimitRule } from '@escape.tech/graphql-armor-cost-limit';
import { maxAliasesRule } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthRule } from '@escape.tech/graphql-armor-max-depth';
import { maxDirectivesRule } from '@escape.tech/graphql-armor-max-directives';
import type { ApolloServerPlugin, BaseContext } from '@apollo/server';
import { createRequire } from 'node:module';
import {
  getOperationAST,
  GraphQLError,
  Kind,
  Lexer,
  Source,
  TokenKind,
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
  type GraphQLFormattedError,
  type GraphQLSchema,
  type ValidationContext,
  type ValidationRule,
} from 'graphql';
import { MAX_CHECKS } from '../modules/entitlements/index.js';
import { MAX_BATCH_EVENTS } from '../modules/usage/index.js';
import type { Metrics } from './metrics.js';
import { subscribeLive, type LiveStream } from './live-stream.js';
import { checkRepresentations, listItems, rootFields } from './operation-shape.js';

/**
 * graphql's CommonJS build, the one @apollo/subgraph builds the schema with and graphql-ws
 * runs with. Node resolves `import 'graphql'` to it anyway; a bundler or test runner that
 * prefers the package's ESM build would otherwise make validate()/execute() refuse the
 * schema as coming "from another module or realm".
 */
const graphqlRuntime = createRequire(import.meta.url)('graphql') as typeof import('graphql');
const { execute: graphqlExecute, parse: graphqlParse, specifiedRules, validate: graphqlValidate } = graphqlRuntime;

/** The one code of every limit refusal (documented in docs/limits.md and the README). */

/** The token check's memo of accepted query texts (see assertTokenBudget). */
const TOKEN_CACHE_ENTRIES = 1_000;
const TOKEN_CACHE_MAX_LENGTH = 4_096;
export const LIMIT_ERROR_CODE = 'QUERY_TOO_COMPLEX';

export interface LimitsConfig {
  /** Largest HTTP request body in bytes. */
  maxBodyBytes: number;
  /** Largest number of lexical tokens in a query document. */
  maxTokens: number;
  /** Deepest field nesting (fragments flattened, introspection's __schema not counted). */
  maxDepth: number;
  /** Most aliased fields in an operation. */
  maxAliases: number;
  /** Most directives in an operation. */
  maxDirectives: number;
  /** Highest graphql-armor static cost (objects 2, scalars 1, x1.5 per level). */
  maxCost: number;
  /** Most `_entities` representations in one operation. */
  maxEntities: number;
  /** Most `checkEntitlements` checks in one operation, all aliases together. */
  maxChecks: number;
  /** Most `recordUsageBatch` events in one operation, all aliases together. */
  maxBatchEvents: number;
}

export type LimitName = Exclude<keyof LimitsConfig, never>;

/** A request over one of the limits. Public: its message says which limit and how to fix it. */
export class LimitExceededError extends GraphQLError {
  constructor(message: string, limit: LimitName, max: number, options: { status?: number; found?: number } = {}) {
    super(message, {
      extensions: {
        code: LIMIT_ERROR_CODE,
        limit,
        max,
        ...(options.found === undefined ? {} : { found: options.found }),
        http: { status: options.status ?? 400 },
      },
    });
  }
}

/**
 * graphql-armor rules report through a callback; propagating (throwing) would escape
 * graphql-js's `validate` as an exception. Reporting keeps them ordinary validation errors.
 */
function armorRule<O>(
  rule: (options: O) => (context: ValidationContext) => unknown,
  options: O,
  limit: LimitName,
  max: number,
): ValidationRule {
  return rule({
    ...options,
    exposeLimits: true,
    propagateOnRejection: false,
    onReject: [
      (context: ValidationContext | null, error: GraphQLError) => {
        context?.reportError(new LimitExceededError(`${error.message.replace(/^Syntax Error: /, '')} ${HINTS[limit]}`, limit, max));
      },
    ],
  } as O) as ValidationRule;
}

const HINTS: Record<LimitName, string> = {
  maxBodyBytes: 'Send a smaller request (split batches).',
  maxTokens: 'Send a shorter document; pass large inputs as variables.',
  maxDepth: 'Select less deeply nested fields.',
  maxAliases: 'Send fewer aliased fields, or several requests.',
  maxDirectives: 'Use fewer directives.',
  maxCost: 'Select fewer fields, or split the query into several requests.',
  maxEntities: 'Send fewer representations per request.',
  maxChecks: 'Split the checks over several requests.',
  maxBatchEvents: 'Split the events over several requests.',
};

/**
 * Root fields whose list argument is budgeted across the whole operation. `fieldCap` is
 * the field's own cap: a single field over it is refused by its resolver, before any work,
 * with the module's specific BAD_USER_INPUT, so the budget leaves it to that answer.
 */
const BUDGETED_ARGUMENTS: ReadonlyArray<{
  field: string;
  argument: string;
  limit: 'maxEntities' | 'maxChecks' | 'maxBatchEvents';
  noun: string;
  fieldCap?: number;
}> = [
  { field: '_entities', argument: 'representations', limit: 'maxEntities', noun: 'entity representations' },
  { field: 'checkEntitlements', argument: 'checks', limit: 'maxChecks', noun: 'entitlement checks', fieldCap: MAX_CHECKS },
  { field: 'recordUsageBatch', argument: 'events', limit: 'maxBatchEvents', noun: 'usage events', fieldCap: MAX_BATCH_EVENTS },
];

export interface Limits {
  readonly config: LimitsConfig;
  /** graphql-armor rules, for Apollo's `validationRules` and the WebSocket `validate`. */
  readonly validationRules: ValidationRule[];
  /** graphql-js parse options (its native token cap), for Apollo's `parseOptions`. */
  readonly parseOptions: { maxTokens: number };
  /** Throws LimitExceededError when `query` has more than maxTokens tokens; stops lexing there. */
  assertTokenBudget(query: string): void;
  /**
   * The operation budget over raw variables, and the shape of `_entities` representations.
   * Returns the first error, or undefined when the operation may run.
   */
  checkOperationBudget(
    schema: GraphQLSchema,
    document: DocumentNode,
    operationName: string | null | undefined,
    variables: Record<string, unknown> | null | undefined,
  ): GraphQLError | undefined;
  /** Apollo plugin running `checkOperationBudget` after validation, before execution. */
  readonly apolloPlugin: ApolloServerPlugin<BaseContext>;
  /**
   * graphql-ws `useServer` options applying the same limits over WebSocket: a token check
   * in front of `parse` (the socket's own, e.g. its document cache), the limit rules in
   * `validate`, and the operation budget in front of `execute` / `subscribe`.
   */
  webSocketOptions(parse?: (source: string | Source) => DocumentNode): WebSocketLimitOptions;
  /** Wraps an error formatter so limit refusals keep their code (instead of being masked). */
  wrapFormatError<F extends (formatted: GraphQLFormattedError, error: unknown) => GraphQLFormattedError>(
    formatError: F,
    metrics?: Metrics,
  ): F;
}

export interface WebSocketLimitOptions {
  parse(source: string | Source): DocumentNode;
  validate(schema: GraphQLSchema, document: DocumentNode): ReadonlyArray<GraphQLError>;
  execute(args: ExecutionArgs): ReturnType<typeof graphqlExecute>;
  subscribe(args: ExecutionArgs): Promise<LiveStream | ExecutionResult>;
}

export function createLimits(config: LimitsConfig): Limits {
  const validationRules: ValidationRule[] = [
    armorRule(maxDepthRule, { n: config.maxDepth, flattenFragments: true, ignoreIntrospection: true }, 'maxDepth', config.maxDepth),
    armorRule(maxAliasesRule, { n: config.maxAliases }, 'maxAliases', config.maxAliases),
    armorRule(maxDirectivesRule, { n: config.maxDirectives }, 'maxDirectives', config.maxDirectives),
    armorRule(costLimitRule, { maxCost: config.maxCost, flattenFragments: true, ignoreIntrospection: true }, 'maxCost', config.maxCost),
  ];

  /**
   * Short query texts already found within the token budget. Clients send the same few
   * operations over and over (variables vary, the text does not), so lexing each again
   * is waste on the hot path. Bounded in entries and in each text's length; a flood of
   * distinct texts only churns it (oldest first).
   */
  const withinBudget = new Set<string>();
  function assertTokenBudget(query: string): void {
    if (withinBudget.has(query)) return;
    lexTokenBudget(query);
    if (query.length <= TOKEN_CACHE_MAX_LENGTH) {
      if (withinBudget.size >= TOKEN_CACHE_ENTRIES) withinBudget.delete(withinBudget.values().next().value!);
      withinBudget.add(query);
    }
  }

  function lexTokenBudget(query: string): void {
    const lexer = new Lexer(new Source(query));
    let count = 0;
    // Lexing stops at the first token over the limit: refusing costs at most maxTokens tokens.
    while (lexer.advance().kind !== TokenKind.EOF) {
      if (++count > config.maxTokens) {
        throw new LimitExceededError(`Query has more than ${config.maxTokens} tokens. ${HINTS.maxTokens}`, 'maxTokens', config.maxTokens);
      }
    }
  }

  const entityTypeNames = new WeakMap<GraphQLSchema, ReadonlySet<string>>();
  function entityTypesOf(schema: GraphQLSchema): ReadonlySet<string> {
    let names = entityTypeNames.get(schema);
    if (!names) {
      // Duck-typed rather than isUnionType(): no instanceof across graphql builds.
      const union = schema.getType('_Entity') as { getTypes?: () => ReadonlyArray<{ name: string }> } | undefined;
      names = new Set(typeof union?.getTypes === 'function' ? union.getTypes().map((type) => type.name) : []);
      entityTypeNames.set(schema, names);
    }
    return names;
  }

  function checkOperationBudget(
    schema: GraphQLSchema,
    document: DocumentNode,
    operationName: string | null | undefined,
    variables: Record<string, unknown> | null | undefined,
  ): GraphQLError | undefined {
    const operation = getOperationAST(document, operationName ?? undefined);
    if (!operation) return undefined; // graphql-js reports that itself
    const fragments = new Map(
      document.definitions.flatMap((definition) =>
        definition.kind === Kind.FRAGMENT_DEFINITION ? [[definition.name.value, definition] as const] : [],
      ),
    );
    const fields = rootFields(operation.selectionSet, fragments);
    const vars = variables ?? {};
    const totals = new Map<string, number>();
    for (const field of fields) {
      const budget = BUDGETED_ARGUMENTS.find((entry) => entry.field === field.name.value);
      if (!budget) continue;
      const argument = field.arguments?.find((arg) => arg.name.value === budget.argument);
      if (!argument) continue;
      const items = listItems(argument.value, operation, vars);
      if (budget.fieldCap !== undefined && items.count > budget.fieldCap) continue; // refused by its resolver
      const total = (totals.get(budget.limit) ?? 0) + items.count;
      totals.set(budget.limit, total);
      const max = config[budget.limit];
      if (total > max) {
        return new LimitExceededError(
          `The operation sends ${total > items.count ? 'at least ' : ''}${total} ${budget.noun} (all ${budget.field} fields together); at most ${max} are allowed. ${HINTS[budget.limit]}`,
          budget.limit,
          max,
          { found: total },
        );
      }
      if (budget.field === '_entities') {
        const error = checkRepresentations(items.values(), entityTypesOf(schema));
        if (error) return error;
      }
    }
    return undefined;
  }

  const apolloPlugin: ApolloServerPlugin<BaseContext> = {
    async requestDidStart() {
      return {
        async didResolveOperation({ schema, document, request }) {
          const error = checkOperationBudget(schema, document, request.operationName, request.variables);
          if (error) throw error;
        },
      };
    },
  };

  // A document over the token limit cannot be returned from `parse` as an error without
  // graphql-ws closing the whole socket (4500), so it is parsed as an empty document that
  // `validate` below turns into the refusal, sent as an ordinary error message.
  const overTokenLimit = new WeakMap<DocumentNode, GraphQLError>();
  const webSocketOptions = (
    innerParse: (source: string | Source) => DocumentNode = (source) => graphqlParse(source, { maxTokens: config.maxTokens }),
  ): WebSocketLimitOptions => ({
    parse(source) {
      const text = typeof source === 'string' ? source : source.body;
      try {
        assertTokenBudget(text);
      } catch (error) {
        const placeholder: DocumentNode = { kind: Kind.DOCUMENT, definitions: [] };
        overTokenLimit.set(placeholder, error as GraphQLError);
        return placeholder;
      }
      return innerParse(source);
    },
    validate(schema, document) {
      const refused = overTokenLimit.get(document);
      if (refused) return [refused];
      return graphqlValidate(schema, document, [...specifiedRules, ...validationRules]);
    },
    execute(args) {
      const error = checkOperationBudget(args.schema, args.document, args.operationName, args.variableValues as Record<string, unknown>);
      return error ? { errors: [error] } : graphqlExecute(args);
    },
    subscribe(args) {
      const error = checkOperationBudget(args.schema, args.document, args.operationName, args.variableValues as Record<string, unknown>);
      return error ? Promise.resolve({ errors: [error] }) : subscribeLive(args);
    },
  });

  return {
    config,
    validationRules,
    parseOptions: { maxTokens: config.maxTokens },
    assertTokenBudget,
    checkOperationBudget,
    apolloPlugin,
    webSocketOptions,
    wrapFormatError<F extends (formatted: GraphQLFormattedError, error: unknown) => GraphQLFormattedError>(
      formatError: F,
      metrics?: Metrics,
    ): F {
      const wrapped = (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
        const limit =
          limitErrorOf(error) ??
          (isTokenParseError(formatted)
            ? new LimitExceededError(`Query has more than ${config.maxTokens} tokens. ${HINTS.maxTokens}`, 'maxTokens', config.maxTokens)
            : undefined);
        if (limit) {
          metrics?.graphqlErrors.inc({ code: LIMIT_ERROR_CODE });
          const { http: _http, ...extensions } = limit.extensions as Record<string, unknown>;
          return { message: limit.message, ...(formatted.locations ? { locations: formatted.locations } : {}), extensions };
        }
        return formatError(formatted, error);
      };
      return wrapped as F;
    },
  };
}

/** The LimitExceededError behind an error, however Apollo wrapped it (ValidationError etc.). */
function limitErrorOf(error: unknown): LimitExceededError | undefined {
  for (let current = error, hops = 0; current && hops < 4; hops++) {
    if (current instanceof LimitExceededError) return current;
    current = (current as { originalError?: unknown }).originalError;
  }
  return undefined;
}

/** graphql-js's own `maxTokens` message (the backstop when a document skipped the pre-check). */
function isTokenParseError(formatted: GraphQLFormattedError): boolean {
  return formatted.extensions?.code === 'GRAPHQL_PARSE_FAILED' && /Document contains more that? \d+ tokens/.test(formatted.message);
}
