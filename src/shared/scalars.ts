import { GraphQLScalarType, Kind, type ValueNode } from 'graphql';
import { BadInputError } from './errors.js';

const DECIMAL_PATTERN = /^-?(0|[1-9]\d{0,29})(\.\d{1,18})?$/;

/** Exact decimals travel as strings so that no client or hop rounds them through a float. */
export const DecimalScalar = new GraphQLScalarType<string, string>({
  name: 'Decimal',
  description: 'An exact decimal number as a string.',
  serialize(value) {
    if (typeof value === 'string') return value;
    if (typeof value === 'bigint') return value.toString();
    if (typeof value === 'object' && value !== null && 'toFixed' in value) return String(value);
    throw new TypeError(`Decimal cannot serialize ${typeof value}`);
  },
  parseValue(value) {
    return parseDecimalText(value);
  },
  parseLiteral(ast) {
    // Accept integer literals for convenience (`quantity: 5`); floats are refused because
    // a client that writes 0.1 as a float literal has usually already lost precision.
    if (ast.kind === Kind.STRING || ast.kind === Kind.INT) return parseDecimalText(ast.value);
    throw new BadInputError('Decimal values must be strings such as "0.25", not floats.');
  },
});

function parseDecimalText(value: unknown): string {
  if (typeof value !== 'string') {
    throw new BadInputError(`Decimal values must be strings such as "12.5"; got ${typeof value}.`);
  }
  const text = value.trim();
  if (!DECIMAL_PATTERN.test(text)) {
    throw new BadInputError(
      `"${value.slice(0, 40)}" is not a decimal: use digits with an optional "." and fraction, e.g. "1500" or "0.002".`,
    );
  }
  return text;
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/i;

export const DateTimeScalar = new GraphQLScalarType<Date, string>({
  name: 'DateTime',
  description: 'An RFC 3339 timestamp, returned in UTC.',
  serialize(value) {
    const date = value instanceof Date ? value : typeof value === 'string' ? new Date(value) : null;
    if (!date || Number.isNaN(date.getTime())) throw new TypeError('DateTime cannot serialize an invalid date');
    return date.toISOString();
  },
  parseValue: parseDateTime,
  parseLiteral(ast) {
    if (ast.kind !== Kind.STRING) throw new BadInputError('DateTime values must be RFC 3339 strings.');
    return parseDateTime(ast.value);
  },
});

function parseDateTime(value: unknown): Date {
  if (typeof value !== 'string' || !RFC3339.test(value)) {
    throw new BadInputError(`"${String(value).slice(0, 40)}" is not an RFC 3339 timestamp such as 2026-01-31T00:00:00Z.`);
  }
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) throw new BadInputError(`"${value}" is not a valid date.`);
  return date;
}

export const JSONScalar = new GraphQLScalarType<unknown, unknown>({
  name: 'JSON',
  description: 'Arbitrary JSON.',
  serialize: (value) => value,
  parseValue: (value) => value,
  parseLiteral: (ast, variables) => literalToJson(ast, variables ?? undefined),
});

function literalToJson(ast: ValueNode, variables: Record<string, unknown> | undefined): unknown {
  switch (ast.kind) {
    case Kind.STRING:
    case Kind.BOOLEAN:
      return ast.value;
    case Kind.INT:
    case Kind.FLOAT:
      return Number(ast.value);
    case Kind.NULL:
      return null;
    case Kind.LIST:
      return ast.values.map((node) => literalToJson(node, variables));
    case Kind.OBJECT:
      return Object.fromEntries(ast.fields.map((field) => [field.name.value, literalToJson(field.value, variables)]));
    case Kind.VARIABLE:
      return variables?.[ast.name.value];
    default:
      throw new BadInputError('Unsupported JSON literal.');
  }
}
