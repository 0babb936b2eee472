import { describe, expect, it } from 'vitest';
import type { ContractDoc } from '../contracts/index.js';
import { resolveBillingPeriod, usagePeriodsRatedIn } from './periods.js';

const iso = (periods: Array<{ start: Date; end: Date | null }>) =>
  periods.map(({ start, end }) => [start.toISOString().slice(0, 10), end?.toISOString().slice(0, 10) ?? null]);

const contract = (extra: Partial<ContractDoc> = {}): ContractDoc => ({
  _id: 'ctr',
  accountId: 'acct',
  planKey: 'p',
  planVersion: 1,
  status: 'ACTIVE',
  startsAt: new Date('2026-01-31T00:00:00Z'),
  endsAt: null,
  billingAnchor: new Date('2026-01-31T00:00:00Z'),
  createdAt: new Date(0),
  updatedAt: new Date(0),
  ...extra,
});

describe('billing periods', () => {
  const now = new Date('2026-06-15T00:00:00Z');
  const monthly = () => 'MONTH' as const;

  it('are anniversaries of the anchor: a month-end anchor gives Feb 28, Mar 31, Apr 30', () => {
    expect(iso([resolveBillingPeriod(contract(), monthly, new Date('2026-02-28T00:00:00Z'), now)])).toEqual([['2026-02-28', '2026-03-31']]);
    expect(iso([resolveBillingPeriod(contract(), monthly, null, now)])).toEqual([['2026-05-31', '2026-06-30']]);
  });

  it('default to the last period of an ended contract', () => {
    const ended = contract({ endsAt: new Date('2026-04-10T00:00:00Z') });
    expect(iso([resolveBillingPeriod(ended, monthly, null, now)])).toEqual([['2026-03-31', '2026-04-30']]);
  });

  it('refuse an instant that is not a boundary, naming the first one when it lies before it', () => {
    expect(() => resolveBillingPeriod(contract(), monthly, new Date('2026-01-15T00:00:00Z'), now)).toThrow(
      /the nearest are 2025-12-31T00:00:00.000Z and 2026-01-31T00:00:00.000Z/,
    );
  });

  it('bill a NEVER plan once, for the life of a contract that ends', () => {
    const once = contract({ endsAt: new Date('2026-03-15T00:00:00Z') });
    expect(iso([resolveBillingPeriod(once, () => 'NEVER', null, now)])).toEqual([['2026-01-31', '2026-03-15']]);
    expect(() => resolveBillingPeriod(contract(), () => 'NEVER', null, now)).toThrow(/has no endsAt/);
  });
});

describe('usage periods rated in a billing period: those that end in it', () => {
  const april = { start: new Date('2026-03-31T00:00:00Z'), end: new Date('2026-04-30T00:00:00Z') };
  const anchor = new Date('2026-01-31T00:00:00Z');

  it('is the billing period itself when they reset alike', () => {
    expect(iso(usagePeriodsRatedIn(anchor, 'MONTH', april, null))).toEqual([['2026-03-31', '2026-04-30']]);
  });

  it('is every day of it for a daily reset', () => {
    const days = usagePeriodsRatedIn(anchor, 'DAY', april, null);
    expect(days).toHaveLength(30);
    expect(iso([days[0]!, days.at(-1)!])).toEqual([
      ['2026-03-31', '2026-04-01'],
      ['2026-04-29', '2026-04-30'],
    ]);
  });

  it('is the weeks that end in it, the first starting before it', () => {
    expect(iso(usagePeriodsRatedIn(anchor, 'WEEK', april, null))).toEqual([
      ['2026-03-28', '2026-04-04'],
      ['2026-04-04', '2026-04-11'],
      ['2026-04-11', '2026-04-18'],
      ['2026-04-18', '2026-04-25'],
    ]);
  });

  it('is a yearly period only in the month it ends (a true-up), and a lifetime one in the month the contract ends', () => {
    expect(usagePeriodsRatedIn(anchor, 'YEAR', april, null)).toEqual([]);
    const january2027 = { start: new Date('2027-01-31T00:00:00Z'), end: new Date('2027-02-28T00:00:00Z') };
    expect(iso(usagePeriodsRatedIn(anchor, 'YEAR', { start: new Date('2026-12-31T00:00:00Z'), end: january2027.start }, null))).toEqual([
      ['2026-01-31', '2027-01-31'],
    ]);
    expect(usagePeriodsRatedIn(anchor, 'NEVER', april, null)).toEqual([]);
    expect(iso(usagePeriodsRatedIn(anchor, 'NEVER', april, new Date('2026-04-20T00:00:00Z')))).toEqual([['2026-01-31', null]]);
  });
});
