/**
 * The shape of an operation as the operation budget (limits.ts) reads it: its root fields
 * through fragments, the items of a list argument (literal or variable), and the
 * `_entities` representations, checked before any resolver.
 */
import type { FieldNode, OperationDefinitionNode, SelectionSetNode, ValueNode } from 'graphql';
import { type GraphQLError, Kind, valueFromASTUntyped } from 'graphql';
import { BadInputError } from '../shared/errors.js';

/** The longest entity id accepted (ids elsewhere are capped at 128; keys a little more). */
const MAX_REPRESENTATION_ID_LENGTH = 256;

/**
 * The operation's root fields as graphql-js collects them: through inline fragments and
 * fragment spreads, one field per response key (fields merged under one key run once).
 */
export function rootFields(
  selectionSet: SelectionSetNode,
  fragments: ReadonlyMap<string, { selectionSet: SelectionSetNode }>,
): FieldNode[] {
  const byKey = new Map<string, FieldNode>();
  const visited = new Set<string>();
  const walk = (set: SelectionSetNode) => {
    for (const selection of set.selections) {
      if (selection.kind === Kind.FIELD) {
        const key = selection.alias?.value ?? selection.name.value;
        if (!byKey.has(key)) byKey.set(key, selection);
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        walk(selection.selectionSet);
      } else {
        const name = selection.name.value;
        if (visited.has(name)) continue;
        visited.add(name);
        const fragment = fragments.get(name);
        if (fragment) walk(fragment.selectionSet);
      }
    }
  };
  walk(selectionSet);
  return [...byKey.values()];
}

/**
 * How many items a list argument carries: a literal list counts its entries, a variable
 * counts its value's entries (or its default's), anything else is one item (input
 * coercion wraps a single value into a list).
 */
export function listItems(
  value: ValueNode,
  operation: OperationDefinitionNode,
  variables: Record<string, unknown>,
): { count: number; values(): unknown[] } {
  if (value.kind === Kind.LIST)
    return { count: value.values.length, values: () => value.values.map((item) => valueFromASTUntyped(item, variables)) };
  if (value.kind === Kind.VARIABLE) {
    const name = value.name.value;
    if (Object.hasOwn(variables, name)) {
      const raw = variables[name];
      if (raw === null || raw === undefined) return { count: 0, values: () => [] };
      return Array.isArray(raw) ? { count: raw.length, values: () => raw } : { count: 1, values: () => [raw] };
    }
    const fallback = operation.variableDefinitions?.find((definition) => definition.variable.name.value === name)?.defaultValue;
    return fallback ? listItems(fallback, operation, variables) : { count: 0, values: () => [] };
  }
  if (value.kind === Kind.NULL) return { count: 0, values: () => [] };
  return { count: 1, values: () => [valueFromASTUntyped(value, variables)] };
}

/**
 * A representation names an entity type of this subgraph and carries a non-empty string
 * id. Anything else (`{"id": {"$ne": null}}`, an unknown or missing `__typename`) is the
 * caller's error, refused before any resolver, and never reaches a database filter.
 */
export function checkRepresentations(representations: unknown[], entityTypes: ReadonlySet<string>): GraphQLError | undefined {
  for (const [index, representation] of representations.entries()) {
    if (typeof representation !== 'object' || representation === null || Array.isArray(representation)) {
      return badRepresentation(`representations[${index}] must be an object with "__typename" and "id".`, index);
    }
    const { __typename: typename, id } = representation as Record<string, unknown>;
    if (typeof typename !== 'string' || !entityTypes.has(typename)) {
      return badRepresentation(
        `representations[${index}].__typename must be one of ${[...entityTypes].map((name) => `"${name}"`).join(', ')}; got ${typeof typename === 'string' ? `"${typename.slice(0, 64)}"` : String(typename === undefined ? 'nothing' : typeof typename)}.`,
        index,
      );
    }
    if (typeof id !== 'string' || id.length === 0 || id.length > MAX_REPRESENTATION_ID_LENGTH) {
      return badRepresentation(
        `representations[${index}].id must be a non-empty string of at most ${MAX_REPRESENTATION_ID_LENGTH} characters.`,
        index,
      );
    }
  }
  return undefined;
}

function badRepresentation(message: string, index: number): GraphQLError {
  return new BadInputError(message, { field: `representations[${index}]` });
}
