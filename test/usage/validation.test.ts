import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCode } from '../support/fixtures.js';
import { signToken, startTestInstance, type TestInstance } from '../support/harness.js';
import {
  defineUsageFeatures,
  key,
  ledgerOf,
  meteredAccount,
  recordBatch,
  recordUsage,
  type UsageInput,
} from '../support/usage-fixtures.js';

let app: TestInstance;
let accountId: string;
beforeAll(async () => {
  app = await startTestInstance();
  await defineUsageFeatures(app);
  ({ accountId } = await meteredAccount(app, { included: '1000' }));
});
afterAll(() => app.stop());

const valid = (overrides: Partial<UsageInput> = {}): UsageInput => ({
  accountId,
  feature: 'api_calls',
  quantity: '1',
  idempotencyKey: key(),
  ...overrides,
});

/** Bad input must leave no trace: no event, posting, counter or audit entry. */
async function expectNothingWritten(account = accountId): Promise<void> {
  const { events, postings, counters, audit } = await ledgerOf(app.database.db, account);
  expect({ events: events.length, postings: postings.length, counters: counters.length, audit: audit.length }).toEqual({
    events: 0,
    postings: 0,
    counters: 0,
    audit: 0,
  });
}

describe('bad input is refused with a specific error and nothing is written', () => {
  it.each([
    ['a negative quantity', '-1', /must not be negative/],
    ['a zero quantity', '0', /greater than zero/],
    ['NaN', 'NaN', /not a decimal/],
    ['a huge quantity', '1000000001', /exceeds the maximum of 1000000000 units/],
    ['more than 6 decimals', '0.0000001', /more than 6 fractional digits|not a decimal/],
    ['an exponent', '1e3', /not a decimal/],
  ])('refuses %s', async (_label, quantity, message) => {
    const single = await recordUsage(app, valid({ quantity }));
    expect(errorCode(single)).toBe('BAD_USER_INPUT');
    expect(single.errors![0]!.message).toMatch(message);
    const batch = await recordBatch(app, [valid(), valid({ quantity })]);
    expect(errorCode(batch)).toBe('BAD_USER_INPUT');
    await expectNothingWritten();
  });

  it('refuses an unknown feature and a BOOLEAN feature', async () => {
    const unknown = await recordUsage(app, valid({ feature: 'teleportation' }));
    expect(errorCode(unknown)).toBe('BAD_USER_INPUT');
    expect(unknown.errors![0]!.message).toContain('"teleportation" is not defined in the catalog');
    const invalidKey = await recordUsage(app, valid({ feature: 'Not-A-Key' }));
    expect(errorCode(invalidKey)).toBe('BAD_USER_INPUT');
    const boolean = await recordBatch(app, [valid(), valid({ feature: 'sso' })]);
    expect(errorCode(boolean)).toBe('BAD_USER_INPUT');
    expect(boolean.errors![0]!.message).toMatch(/events\[1\].*BOOLEAN/);
    await expectNothingWritten();
  });

  it('refuses idempotency keys over 256 characters or containing "$" or "."', async () => {
    const other = await meteredAccount(app);
    expect((await recordUsage(app, valid({ accountId: other.accountId, idempotencyKey: 'k'.repeat(256) }))).errors).toBeUndefined();
    const long = await recordUsage(app, valid({ idempotencyKey: 'k'.repeat(257) }));
    expect(errorCode(long)).toBe('BAD_USER_INPUT');
    expect(long.errors![0]!.message).toContain('257 characters');
    for (const idempotencyKey of ['$where', 'order.42', '', 'tab\there']) {
      const response = await recordUsage(app, valid({ idempotencyKey }));
      expect(errorCode(response), idempotencyKey).toBe('BAD_USER_INPUT');
    }
    await expectNothingWritten();
  });

  it('refuses property keys that start with "$" or contain ".", at any depth', async () => {
    const other = await meteredAccount(app);
    for (const properties of [{ $set: 1 }, { 'a.b': 1 }, { nested: { deeper: [{ $gt: 1 }] } }, { fine: { 'not.fine': true } }]) {
      const response = await recordUsage(app, valid({ accountId: other.accountId, properties }));
      expect(errorCode(response), JSON.stringify(properties)).toBe('BAD_USER_INPUT');
      expect(response.errors![0]!.message).toMatch(/must not be empty, start with "\$" or contain "\."/);
    }
    await expectNothingWritten(other.accountId);
  });

  it('refuses 1,001 events, and a batch with one bad event among 1,000', async () => {
    const other = await meteredAccount(app);
    const tooMany = await recordBatch(
      app,
      Array.from({ length: 1_001 }, () => valid({ accountId: other.accountId })),
    );
    expect(errorCode(tooMany)).toBe('BAD_USER_INPUT');
    expect(tooMany.errors![0]!.message).toContain('at most 1000 events; got 1001');
    const events = Array.from({ length: 1_000 }, () => valid({ accountId: other.accountId }));
    events[500] = valid({ accountId: other.accountId, quantity: '-5' });
    const oneBad = await recordBatch(app, events);
    expect(errorCode(oneBad)).toBe('BAD_USER_INPUT');
    expect(oneBad.errors![0]!.message).toContain('events[500]');
    await expectNothingWritten(other.accountId);
  });

  it('refuses timestamps more than 5 minutes ahead or older than retention, with a clear message', async () => {
    const other = await meteredAccount(app);
    const future = await recordUsage(
      app,
      valid({ accountId: other.accountId, timestamp: new Date(Date.now() + 6 * 60_000).toISOString() }),
    );
    expect(errorCode(future)).toBe('BAD_USER_INPUT');
    expect(future.errors![0]!.message).toContain('more than 5 minutes in the future');
    const ancient = await recordUsage(
      app,
      valid({ accountId: other.accountId, timestamp: new Date(Date.now() - 401 * 86_400_000).toISOString() }),
    );
    expect(errorCode(ancient)).toBe('BAD_USER_INPUT');
    expect(ancient.errors![0]!.message).toContain('older than the 400-day retention period');
    await expectNothingWritten(other.accountId);
  });
});

describe('authorization', () => {
  it('needs the usage:write scope', async () => {
    const other = await meteredAccount(app);
    const token = await signToken({ scope: 'entitlements:read' });
    const single = await recordUsage(app, valid({ accountId: other.accountId }), { token });
    expect(errorCode(single)).toBe('FORBIDDEN');
    expect(single.errors![0]!.message).toContain('usage:write');
    expect(errorCode(await recordBatch(app, [valid({ accountId: other.accountId })], { token }))).toBe('FORBIDDEN');
    expect(errorCode(await recordUsage(app, valid({ accountId: other.accountId }), { token: null }))).toBe('UNAUTHENTICATED');
    await expectNothingWritten(other.accountId);
  });

  it('limits a customer token to its own account, for every event of a batch', async () => {
    const own = await meteredAccount(app);
    const other = await meteredAccount(app);
    const token = await signToken({ scope: 'usage:write', account_id: own.accountId });
    expect((await recordUsage(app, valid({ accountId: own.accountId }), { token })).data?.recordUsage.status).toBe('ACCEPTED');
    expect(errorCode(await recordUsage(app, valid({ accountId: other.accountId }), { token }))).toBe('FORBIDDEN');
    const mixed = await recordBatch(app, [valid({ accountId: own.accountId }), valid({ accountId: other.accountId })], { token });
    expect(errorCode(mixed)).toBe('FORBIDDEN');
    expect((await ledgerOf(app.database.db, own.accountId)).events).toHaveLength(1);
    await expectNothingWritten(other.accountId);
  });
});
