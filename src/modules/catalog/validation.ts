/**
 * Validation at the edge for catalog input: every plan entitlement and every contract
 * override passes through here, so both obey the same rules and say the same things.
 */
import { BadInputError } from '../../shared/errors.js';
import { parseMoney } from '../../shared/money.js';
import { MAX_TERM_UNITS, parseQuantity, type Micros } from '../../shared/quantity.js';
import type { ResetPeriod } from '../../shared/periods.js';
import { parseCreditCost, type CreditCostInputShape } from './credits.js';
import {
  DEFAULT_THRESHOLDS,
  type Enforcement,
  type EntitlementTerms,
  type FeatureDoc,
  type FeatureType,
  hasQuantities,
  type OverageTerms,
  type PricingModel,
  type Rounding,
} from './model.js';
import { parseAllowRules, parseRateLimit, type DimensionRuleInputShape, type RateLimitInputShape } from './rules-validation.js';
import { ONE_UNIT, parseTiers, type PriceTierInputShape } from './tiers.js';

export const KEY_PATTERN = /^[a-z][a-z0-9_]{0,63}$/;
const MAX_THRESHOLDS = 20;
const MAX_CONFIG_BYTES = 16 * 1024;
const MAX_NAME_LENGTH = 200;

/** Feature and plan keys (R1). */
export function parseKey(value: string, field: string): string {
  if (!KEY_PATTERN.test(value)) {
    throw new BadInputError(
      `${field} "${value.slice(0, 70)}" is not a valid key: use 1-64 characters, a lowercase letter first, then lowercase letters, digits or "_" (e.g. "api_calls").`,
      { field },
    );
  }
  return value;
}

export function parseName(value: string, field: string): string {
  const name = value.trim();
  if (name.length === 0 || name.length > MAX_NAME_LENGTH) {
    throw new BadInputError(`${field} must be 1-${MAX_NAME_LENGTH} characters; got ${name.length}.`, { field });
  }
  return name;
}

export function parseUnit(value: string | null | undefined): string | null {
  if (value === null || value === undefined) return null;
  const unit = value.trim();
  if (unit.length === 0) return null;
  if (unit.length > 64) throw new BadInputError('unit must be at most 64 characters, e.g. "call" or "GB".', { field: 'unit' });
  return unit;
}

export function parseThresholds(values: readonly number[], field: string): number[] {
  if (values.length > MAX_THRESHOLDS) throw new BadInputError(`${field} may list at most ${MAX_THRESHOLDS} percentages.`, { field });
  for (const value of values) {
    if (!Number.isInteger(value) || value < 1 || value > 1000) {
      throw new BadInputError(`${field} must be whole percentages between 1 and 1000; got ${value}.`, { field });
    }
  }
  return [...new Set(values)].sort((a, b) => a - b);
}

export interface OverageInputShape {
  /** Required for PER_UNIT; ignored with tiers (R15). */
  unitPrice?: string | null;
  per?: string | null;
  rounding?: Rounding | null;
  model?: PricingModel | null;
  tiers?: readonly PriceTierInputShape[] | null;
}

/** `currency` checks tier flat fees; overrides pass none and check later (assertOverageCurrency). */
export function parseOverage(input: OverageInputShape, field: string, currency?: string): OverageTerms {
  const model = input.model ?? 'PER_UNIT';
  if (model !== 'PER_UNIT') return parseTieredOverage(input, model, field, currency);
  if (input.tiers != null) {
    throw new BadInputError(`${field}.tiers apply only to GRADUATED or VOLUME prices: set ${field}.model, or remove the tiers.`, {
      field: `${field}.tiers`,
    });
  }
  if (input.unitPrice == null) {
    throw new BadInputError(`${field}.unitPrice is required for a PER_UNIT price, e.g. "0.20".`, { field: `${field}.unitPrice` });
  }
  const unitPrice = parseMoney(input.unitPrice, `${field}.unitPrice`);
  if (unitPrice.isZero()) {
    throw new BadInputError(`${field}.unitPrice must be greater than zero; omit overage to leave overage unpriced.`, {
      field: `${field}.unitPrice`,
    });
  }
  return {
    unitPrice: unitPrice.toFixed(),
    per: parseQuantity(input.per ?? '1', { field: `${field}.per` }),
    rounding: input.rounding ?? 'EXACT',
  };
}

/**
 * GRADUATED or VOLUME: tier prices are per unit, so `per` may only be 1; `rounding` UP
 * bills a started unit as a whole one. `unitPrice`, if given, is ignored (SPEC R15): the
 * stored one is the first tier's, for readers that know nothing of tiers.
 */
function parseTieredOverage(
  input: OverageInputShape,
  model: Exclude<PricingModel, 'PER_UNIT'>,
  field: string,
  currency?: string,
): OverageTerms {
  if (input.tiers == null) {
    throw new BadInputError(`${field}.tiers are required for a ${model} price: list them ascending, the last without upTo.`, {
      field: `${field}.tiers`,
    });
  }
  const per = parseQuantity(input.per ?? '1', { field: `${field}.per` });
  if (per !== ONE_UNIT) {
    throw new BadInputError(`${field}.per must be 1 with tiers: tier prices are per unit. Scale upTo and unitPrice instead.`, {
      field: `${field}.per`,
    });
  }
  const tiers = parseTiers(input.tiers, model, `${field}.tiers`, currency);
  return { unitPrice: tiers[0]!.unitPrice, per, rounding: input.rounding ?? 'EXACT', model, tiers };
}

/** Config is stored as given; keys starting with "$" would be read by MongoDB as operators. */
export function parseConfig(value: unknown, field: string): unknown {
  if (value === undefined) return null;
  const text = JSON.stringify(value);
  if (text !== undefined && Buffer.byteLength(text) > MAX_CONFIG_BYTES) {
    throw new BadInputError(`${field} is larger than ${MAX_CONFIG_BYTES} bytes of JSON; keep configuration small.`, { field });
  }
  assertSafeKeys(value, field);
  return value ?? null;
}

function assertSafeKeys(value: unknown, field: string): void {
  if (Array.isArray(value))
    value.forEach((item) => {
      assertSafeKeys(item, field);
    });
  else if (value !== null && typeof value === 'object') {
    for (const [key, inner] of Object.entries(value)) {
      if (key.startsWith('$') || key.includes('.')) {
        throw new BadInputError(`${field} key "${key.slice(0, 40)}" must not start with "$" or contain "."; rename it.`, { field });
      }
      assertSafeKeys(inner, field);
    }
  }
}

function parseGrace(value: string, field: string): Micros {
  return parseQuantity(value, { field, allowZero: true, maxUnits: MAX_TERM_UNITS });
}

function parseIncluded(value: string, field: string): Micros {
  return parseQuantity(value, { field, allowZero: true, maxUnits: MAX_TERM_UNITS });
}

export interface PlanEntitlementInputShape {
  feature: string;
  enabled?: boolean | null;
  included?: string | null;
  resetPeriod?: ResetPeriod | null;
  enforcement?: Enforcement | null;
  grace?: string | null;
  overage?: OverageInputShape | null;
  thresholds?: readonly number[] | null;
  config?: unknown;
  pooled?: boolean | null;
  rateLimit?: RateLimitInputShape | null;
  allow?: readonly DimensionRuleInputShape[] | null;
  credits?: CreditCostInputShape | null;
}

/**
 * One plan entitlement. Quantity terms only make sense for METERED features, so a BOOLEAN
 * feature given `included`, `grace` or `overage` is refused rather than silently ignored.
 */
export function parsePlanEntitlement(
  input: PlanEntitlementInputShape,
  feature: FeatureDoc,
  field: string,
  currency?: string,
): EntitlementTerms {
  if (feature.type === 'BOOLEAN') assertNoQuantityTerms(input, feature.type, field);
  if (feature.type === 'GAUGE') assertNotPooledGauge(input, field);
  return {
    feature: feature._id,
    enabled: input.enabled ?? true,
    included: hasQuantities(feature.type) && input.included != null ? parseIncluded(input.included, `${field}.included`) : null,
    resetPeriod: input.resetPeriod ?? 'MONTH',
    enforcement: input.enforcement ?? 'HARD',
    grace: hasQuantities(feature.type) && input.grace != null ? parseGrace(input.grace, `${field}.grace`) : 0n,
    overage: hasQuantities(feature.type) && input.overage ? parseOverage(input.overage, `${field}.overage`, currency) : null,
    thresholds: input.thresholds ? parseThresholds(input.thresholds, `${field}.thresholds`) : [...DEFAULT_THRESHOLDS],
    config: parseConfig(input.config, `${field}.config`),
    ...(input.pooled ? { pooled: true } : {}),
    ...(input.rateLimit ? { rateLimit: parseRateLimit(input.rateLimit, feature.type, `${field}.rateLimit`) } : {}),
    ...(input.allow && input.allow.length > 0 ? { allow: parseAllowRules(input.allow, `${field}.allow`) } : {}),
    ...(input.credits ? { credits: parseCreditCost(input.credits, feature, `${field}.credits`) } : {}),
  };
}

function assertNoQuantityTerms(input: PlanEntitlementInputShape | OverrideInputShape, type: FeatureType, field: string): void {
  const offending = (['included', 'overage'] as const).find((name) => input[name] != null);
  const graceGiven = input.grace != null && parseGrace(input.grace, `${field}.grace`) !== 0n;
  if (offending || graceGiven) {
    throw new BadInputError(
      `${field}.${offending ?? 'grace'} does not apply to ${type} feature "${input.feature}": only METERED and GAUGE features have quantities. Remove it.`,
      { field: `${field}.${offending ?? 'grace'}` },
    );
  }
}

/** A gauge's level is one account's (R16); pools (R13) share sums, not levels. */
function assertNotPooledGauge(input: PlanEntitlementInputShape, field: string): void {
  if (input.pooled === true) {
    throw new BadInputError(
      `${field}.pooled does not apply to GAUGE feature "${input.feature}": a gauge measures one account's level and cannot be pooled. Remove it.`,
      { field: `${field}.pooled` },
    );
  }
}

export type OverrideInputShape = PlanEntitlementInputShape;

/** Fields of an override, in the order they are documented. */
export const OVERRIDE_FIELDS = [
  'enabled',
  'included',
  'resetPeriod',
  'enforcement',
  'grace',
  'overage',
  'thresholds',
  'config',
  'pooled',
  'rateLimit',
  'allow',
  'credits',
] as const;
export type OverrideField = (typeof OVERRIDE_FIELDS)[number];

/**
 * A partial override: only the fields present in the input are returned. `included: null`
 * and `overage: null` are meaningful (unlimited, unpriced); null for any other field is
 * refused because it has no meaning other than "inherit", which is what omitting it does.
 */
export function parseOverride(input: OverrideInputShape, feature: FeatureDoc): Partial<Omit<EntitlementTerms, 'feature'>> {
  const field = 'input';
  const present = (name: OverrideField) => Object.hasOwn(input, name) && input[name] !== undefined;
  for (const name of ['enabled', 'resetPeriod', 'enforcement', 'grace', 'thresholds', 'pooled'] as const) {
    if (present(name) && input[name] === null) {
      throw new BadInputError(`${field}.${name} cannot be null: omit it to keep the plan's value, or use clearEntitlementOverride.`, {
        field: `${field}.${name}`,
      });
    }
  }
  if (feature.type === 'BOOLEAN') assertNoQuantityTerms(input, feature.type, field);
  if (feature.type === 'GAUGE') assertNotPooledGauge(input, field);
  const override: Partial<Omit<EntitlementTerms, 'feature'>> = {};
  if (present('enabled')) override.enabled = input.enabled!;
  if (present('included')) override.included = input.included === null ? null : parseIncluded(input.included!, `${field}.included`);
  if (present('resetPeriod')) override.resetPeriod = input.resetPeriod!;
  if (present('enforcement')) override.enforcement = input.enforcement!;
  if (present('grace')) override.grace = parseGrace(input.grace!, `${field}.grace`);
  if (present('overage')) override.overage = input.overage === null ? null : parseOverage(input.overage!, `${field}.overage`);
  if (present('thresholds')) override.thresholds = parseThresholds(input.thresholds!, `${field}.thresholds`);
  if (present('config')) override.config = parseConfig(input.config, `${field}.config`);
  if (present('pooled')) override.pooled = input.pooled!;
  // null (or an empty list of rules) removes what the plan sets.
  if (present('rateLimit'))
    override.rateLimit = input.rateLimit === null ? null : parseRateLimit(input.rateLimit!, feature.type, `${field}.rateLimit`);
  if (present('allow')) override.allow = input.allow === null ? null : parseAllowRules(input.allow!, `${field}.allow`);
  // null removes the credit cost: the feature is counted on its own counter again.
  if (present('credits')) override.credits = input.credits === null ? null : parseCreditCost(input.credits!, feature, `${field}.credits`);
  if (Object.keys(override).length === 0) {
    throw new BadInputError(`The override for "${feature._id}" sets no field: give at least one of ${OVERRIDE_FIELDS.join(', ')}.`);
  }
  return override;
}
