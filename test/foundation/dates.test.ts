import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BadInputError } from '../../src/shared/errors.js';
import { DATE_TIME_MAX, DATE_TIME_MIN, parseDateTime } from '../../src/shared/scalars.js';
import { defineCatalog, publishGrowthPlan } from '../support/fixtures.js';
import { startTestInstance, type TestInstance } from '../support/harness.js';

function refusal(text: unknown): string {
  try {
    parseDateTime(text);
  } catch (error) {
    expect(error).toBeInstanceOf(BadInputError);
    return (error as Error).message;
  }
  throw new Error(`${String(text)} was accepted`);
}

describe('parseDateTime: only real calendar instants', () => {
  it('accepts valid RFC 3339 timestamps, with offsets, lowercase t/z and up to 9 fraction digits', () => {
    expect(parseDateTime('2026-01-31T00:00:00Z').toISOString()).toBe('2026-01-31T00:00:00.000Z');
    expect(parseDateTime('2028-02-29T12:30:15.5Z').toISOString()).toBe('2028-02-29T12:30:15.500Z');
    expect(parseDateTime('2026-03-01T01:00:00+02:00').toISOString()).toBe('2026-02-28T23:00:00.000Z');
    expect(parseDateTime('2026-12-31T23:30:00-01:00').toISOString()).toBe('2027-01-01T00:30:00.000Z');
    expect(parseDateTime('2026-06-01t10:00:00.123456789z').toISOString()).toBe('2026-06-01T10:00:00.123Z');
    expect(parseDateTime('2000-02-29T00:00:00Z').toISOString()).toBe('2000-02-29T00:00:00.000Z');
  });

  it('refuses days a month does not have instead of rolling them over', () => {
    expect(refusal('2026-02-30T00:00:00Z')).toMatch(/day 30 does not exist in 2026-02, which has 28 days/);
    expect(refusal('2026-02-29T00:00:00Z')).toMatch(/day 29 does not exist in 2026-02/);
    expect(refusal('2100-02-29T00:00:00Z')).toMatch(/day 29 does not exist in 2100-02/);
    expect(refusal('2026-04-31T00:00:00Z')).toMatch(/day 31 does not exist in 2026-04, which has 30 days/);
    expect(refusal('2026-01-00T00:00:00Z')).toMatch(/day 00 does not exist/);
    expect(refusal('2026-13-01T00:00:00Z')).toMatch(/month 13 does not exist/);
    expect(refusal('2026-00-10T00:00:00Z')).toMatch(/month 00 does not exist/);
  });

  it('refuses impossible times of day and offsets', () => {
    expect(refusal('2026-01-01T24:00:00Z')).toMatch(/hour 24/);
    expect(refusal('2026-01-01T10:60:00Z')).toMatch(/minute 60/);
    expect(refusal('2026-12-31T23:59:60Z')).toMatch(/second 60/);
    expect(refusal('2026-01-01T00:00:00+24:00')).toMatch(/offset \+24:00/);
    expect(refusal('2026-01-01T00:00:00+01:60')).toMatch(/offset \+01:60/);
  });

  it('refuses years outside 1970–9999 instead of mapping two-digit years to 19xx', () => {
    expect(refusal('0026-03-01T00:00:00Z')).toMatch(/year 0026 is outside the supported range 1970–9999/);
    expect(refusal('0099-12-31T00:00:00Z')).toMatch(/year 0099/);
    expect(refusal('1969-12-31T23:59:59Z')).toMatch(/year 1969/);
    expect(refusal('1970-01-01T00:30:00+01:00')).toMatch(/outside the supported range 1970-01-01T00:00:00Z/);
    expect(refusal('9999-12-31T23:59:59-00:01')).toMatch(/outside the supported range/);
    expect(parseDateTime('1970-01-01T00:00:00Z')).toEqual(DATE_TIME_MIN);
    expect(parseDateTime('9999-12-31T23:59:59.999Z')).toEqual(DATE_TIME_MAX);
  });

  it('refuses what is not RFC 3339 at all', () => {
    for (const text of ['2026-01-31', '2026-01-31T00:00:00', '2026-1-31T00:00:00Z', '+002026-01-31T00:00:00Z', 'now', '']) {
      expect(refusal(text)).toMatch(/is not an RFC 3339 timestamp/);
    }
    expect(refusal(1767139200000)).toMatch(/is not an RFC 3339 timestamp/);
  });
});

describe('DateTime through GraphQL', () => {
  let allotment: TestInstance;
  beforeAll(async () => {
    allotment = await startTestInstance();
    await defineCatalog(allotment);
    await publishGrowthPlan(allotment);
  });
  afterAll(() => allotment.stop());

  const UPSERT = `mutation ($input: ContractInput!) { upsertContract(input: $input) { id startsAt } }`;

  it('refuses 2026-02-30 in a variable with BAD_USER_INPUT and stores nothing', async () => {
    const response = await allotment.graphql(UPSERT, {
      input: { id: 'ctr_feb30', accountId: 'acct_feb30', planKey: 'growth', startsAt: '2026-02-30T00:00:00Z' },
    });
    expect(response.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(response.errors?.[0]?.message).toMatch(/day 30 does not exist in 2026-02, which has 28 days/);
    expect(await allotment.database.db.collection('contracts').findOne({ _id: 'ctr_feb30' as never })).toBeNull();
  });

  it('refuses a year below 100 in a variable with BAD_USER_INPUT', async () => {
    const response = await allotment.graphql(UPSERT, {
      input: { id: 'ctr_y26', accountId: 'acct_y26', planKey: 'growth', startsAt: '0026-03-01T00:00:00Z' },
    });
    expect(response.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(response.errors?.[0]?.message).toMatch(/year 0026 is outside the supported range 1970–9999/);
  });

  it('refuses 2026-02-30 written inline in the operation, naming the problem', async () => {
    const response = await allotment.graphql(
      `mutation { upsertContract(input: { id: "ctr_inline", accountId: "acct_inline", planKey: "growth", startsAt: "2026-02-30T00:00:00Z" }) { id } }`,
    );
    expect(response.data ?? null).toBeNull();
    expect(response.errors?.[0]?.message).toMatch(/day 30 does not exist in 2026-02/);
  });

  it('still accepts a real date and returns it in UTC', async () => {
    const response = await allotment.graphql(UPSERT, {
      input: { id: 'ctr_ok', accountId: 'acct_ok', planKey: 'growth', startsAt: '2028-02-29T01:00:00+01:00' },
    });
    expect(response.errors).toBeUndefined();
    expect(response.data?.upsertContract).toEqual({ id: 'ctr_ok', startsAt: '2028-02-29T00:00:00.000Z' });
  });
});
