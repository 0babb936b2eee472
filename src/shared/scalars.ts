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

/**
 * RFC 3339 `date-time` (section 5.6): `T`/`Z` in either case, 1–9 fraction digits, a `Z` or
 * `±hh:mm` offset. The components are checked one by one below, never left to `new Date`,
 * which rolls `2026-02-30` over into March and maps two-digit years to 19xx.
 */
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:(Z)|([+-])(\d{2}):(\d{2}))$/i;

/** The earliest instant a DateTime may name (inclusive): 1970-01-01T00:00:00Z. */
export const DATE_TIME_MIN = new Date(Date.UTC(1970, 0, 1));
/** The latest instant a DateTime may name (inclusive): 9999-12-31T23:59:59.999Z. */
export const DATE_TIME_MAX = new Date(Date.UTC(9999, 11, 31, 23, 59, 59, 999));

export const DateTimeScalar = new GraphQLScalarType<Date, string>({
  name: 'DateTime',
  // Keep in step with the scalar's description in src/schema/base.graphql.
  description:
    'An RFC 3339 timestamp, e.g. 2026-01-31T00:00:00Z; returned in UTC with milliseconds. It must be a real date and time ' +
    '(2026-02-30 is refused) from 1970-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z.',
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

function daysInMonth(year: number, month: number): number {
  // Day 0 of the next month is the last day of this one; the year is >= 1000 here, so
  // Date.UTC's 0–99 → 19xx mapping cannot apply.
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/**
 * The one parser for timestamps a client sends (the DateTime scalar, for literals and
 * variables alike): a real calendar date and time of day, in the supported range, or a
 * BadInputError that says which part is wrong.
 */
export function parseDateTime(value: unknown): Date {
  const text = typeof value === 'string' ? value : undefined;
  const match = text === undefined ? null : RFC3339.exec(text);
  if (!text || !match) {
    throw new BadInputError(`"${String(value).slice(0, 40)}" is not an RFC 3339 timestamp such as 2026-01-31T00:00:00Z.`);
  }
  const [, y, mo, d, h, mi, s, fraction, zulu, sign, oh, om] = match;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h);
  const minute = Number(mi);
  const second = Number(s);
  const refuse = (why: string): never => {
    throw new BadInputError(`"${text.slice(0, 40)}" is not a valid date: ${why}.`);
  };
  if (month < 1 || month > 12) refuse(`month ${mo} does not exist (01–12)`);
  if (year < 1970) refuse(`year ${y} is outside the supported range 1970–9999`);
  const lastDay = daysInMonth(year, month);
  if (day < 1 || day > lastDay) refuse(`day ${d} does not exist in ${y}-${mo}, which has ${lastDay} days`);
  if (hour > 23) refuse(`hour ${h} does not exist (00–23)`);
  if (minute > 59) refuse(`minute ${mi} does not exist (00–59)`);
  if (second > 59) refuse(`second ${s} is not supported (00–59; leap seconds cannot be represented)`);
  let offsetMinutes = 0;
  if (!zulu) {
    const offsetHours = Number(oh);
    const offsetMins = Number(om);
    if (offsetHours > 23 || offsetMins > 59) refuse(`offset ${sign}${oh}:${om} does not exist`);
    offsetMinutes = (sign === '-' ? -1 : 1) * (offsetHours * 60 + offsetMins);
  }
  const millis = fraction ? Number(fraction.slice(0, 3).padEnd(3, '0')) : 0;
  const instant = Date.UTC(year, month - 1, day, hour, minute, second, millis) - offsetMinutes * 60_000;
  if (instant < DATE_TIME_MIN.getTime() || instant > DATE_TIME_MAX.getTime()) {
    refuse('it is outside the supported range 1970-01-01T00:00:00Z – 9999-12-31T23:59:59.999Z');
  }
  return new Date(instant);
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
