/**
 * Test support for the rating tests (rate.test.ts, base-fee.test.ts): builders for plan
 * versions, contracts, prorated base fees and usage periods, rated by the pure functions
 * with no database. Not imported by source code.
 */
import { parseQuantity, type Micros } from '../../shared/quantity.js';
import type { PlanVersionDoc } from '../catalog/index.js';
import type { ContractDoc } from '../contracts/index.js';
import { baseFeeSegments, prorateBaseFees, type BilledPeriod } from './base-fee.js';
import type { OveragePrice, UsageTerms } from './overage.js';
import type { UsagePeriodInput } from './rate.js';

export const q = (text: string): Micros => parseQuantity(text, { field: 'test', allowZero: true, maxUnits: 10n ** 13n });
export const MARCH: BilledPeriod = { start: new Date('2026-03-01T00:00:00Z'), end: new Date('2026-04-01T00:00:00Z') };

export function plan(key: string, version: number, baseFee: string | null, name = key): PlanVersionDoc {
  return {
    _id: `${key}@${version}`,
    key,
    version,
    name,
    currency: 'USD',
    baseFee,
    billingPeriod: 'MONTH',
    entitlements: [],
    publishedAt: new Date(0),
    publishedBy: 'test',
  };
}

export function contract(pins: Array<[string, number, string]>, extra: Partial<ContractDoc> = {}): ContractDoc {
  const history = pins.map(([planKey, planVersion, at]) => ({ planKey, planVersion, effectiveAt: new Date(at) }));
  return {
    _id: 'ctr_test',
    accountId: 'acct_test',
    planKey: history.at(-1)!.planKey,
    planVersion: history.at(-1)!.planVersion,
    planHistory: history,
    status: 'ACTIVE',
    startsAt: history[0]!.effectiveAt,
    endsAt: null,
    billingAnchor: history[0]!.effectiveAt,
    createdAt: new Date(0),
    updatedAt: new Date(0),
    ...extra,
  };
}

export function baseFees(doc: ContractDoc, plans: PlanVersionDoc[], period: BilledPeriod) {
  return prorateBaseFees(baseFeeSegments(doc, new Map(plans.map((p) => [p._id, p])), period), period, 'USD');
}

export function usage(
  feature: string,
  period: { start: Date; end: Date | null },
  terms: UsageTerms,
  used: string,
  grantBurn: Array<[string, string]> = [],
): UsagePeriodInput {
  return {
    feature,
    featureName: feature,
    unit: null,
    counterId: `acct_test|${feature}|${period.start.toISOString()}`,
    period,
    terms,
    granted: grantBurn.reduce((sum, [, units]) => sum + q(units), 0n),
    used: q(used),
    grantBurn: grantBurn.map(([grantId, units]) => ({ grantId, units: q(units), reason: `Reason of ${grantId}` })),
  };
}

export const price = (unitPrice: string, per: string, rounding: 'UP' | 'EXACT'): OveragePrice => ({ unitPrice, per: q(per), rounding });
export const summary = (lines: Array<{ kind: string; quantity: string; unitPrice: string | null; amount: string }>) =>
  lines.map(({ kind, quantity, unitPrice, amount }) => [kind, quantity, unitPrice, amount]);
