import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueGrantOk } from '../grants/fixtures.js';
import { gql } from '../support/fixtures.js';
import { startTestInstance, type TestInstance } from '../support/harness.js';
import {
  defineUsageFeatures,
  expectLedgerConsistent,
  key,
  ledgerOf,
  meteredAccount,
  recordBatch,
  recordUsage,
  recordUsageOk,
  RECEIPT_FIELDS,
  usedNow,
} from '../support/usage-fixtures.js';

let first: TestInstance;
let second: TestInstance;
beforeAll(async () => {
  first = await startTestInstance();
  second = await startTestInstance({ dbName: first.dbName });
  await defineUsageFeatures(first);
});
afterAll(async () => {
  await second.stop();
  await first.stop();
});

/** For the tests that push hundreds of requests: a loaded 2-core CI box needs the headroom. */
const HEAVY = 90_000;

const one = (accountId: string, quantity = '1', feature = 'api_calls') => ({ accountId, feature, quantity, idempotencyKey: key() });

describe('HARD limits are atomic (R6)', () => {
  it(
    'gives exactly 100 accepted and 100 rejected for 200 concurrent 1-unit requests against 100, across two instances',
    async () => {
      const { accountId } = await meteredAccount(first, { included: '100', enforcement: 'HARD', grace: '0' });
      const responses = await Promise.all(Array.from({ length: 200 }, (_, i) => recordUsage(i % 2 ? second : first, one(accountId))));
      const receipts = responses.map((response) => {
        expect(response.errors).toBeUndefined();
        return response.data!.recordUsage;
      });
      const accepted = receipts.filter((receipt) => receipt.status === 'ACCEPTED');
      const rejected = receipts.filter((receipt) => receipt.status === 'REJECTED');
      expect(accepted).toHaveLength(100);
      expect(rejected).toHaveLength(100);
      expect(new Set(accepted.map((receipt) => receipt.reason))).toEqual(new Set(['INCLUDED']));
      expect(new Set(rejected.map((receipt) => receipt.reason))).toEqual(new Set(['QUOTA_EXCEEDED']));
      expect(await usedNow(first, accountId, 'api_calls')).toBe('100');

      // Denied usage is not counted, but it is stored and audited (R6, R10).
      const { events, audit } = await ledgerOf(first.database.db, accountId);
      expect(events).toHaveLength(200);
      expect(audit.filter((entry) => entry.action === 'usage.rejected')).toHaveLength(100);
      expect(audit.find((entry) => entry.action === 'usage.rejected')!.after).toMatchObject({ reason: 'QUOTA_EXCEEDED', quantity: '1' });
      await expectLedgerConsistent(first.database.db, accountId);
    },
    HEAVY,
  );

  it('applies grace before rejecting, and never overshoots with a large request', async () => {
    const { accountId } = await meteredAccount(first, { included: '10', enforcement: 'HARD', grace: '2' });
    expect(await recordUsageOk(first, one(accountId, '9'))).toMatchObject({ status: 'ACCEPTED', reason: 'INCLUDED' });
    expect(await recordUsageOk(first, one(accountId, '2'))).toMatchObject({ status: 'ACCEPTED', reason: 'WITHIN_GRACE' });
    expect(await recordUsageOk(first, one(accountId, '1.000001'))).toMatchObject({ status: 'REJECTED', reason: 'QUOTA_EXCEEDED' });
    expect(await recordUsageOk(first, one(accountId, '1'))).toMatchObject({ status: 'ACCEPTED', reason: 'WITHIN_GRACE' });
    expect(await recordUsageOk(first, one(accountId, '0.000001'))).toMatchObject({ status: 'REJECTED', reason: 'QUOTA_EXCEEDED' });
    expect(await usedNow(first, accountId, 'api_calls')).toBe('12');
  });

  it('decides a batch in order against the counter and rejects the events that no longer fit', async () => {
    const { accountId } = await meteredAccount(first, { included: '10', enforcement: 'HARD' });
    await recordUsageOk(first, one(accountId, '4'));
    const quantities = ['3', '5', '2', '1', '1', '0.5'];
    const response = await recordBatch(
      second,
      quantities.map((quantity) => one(accountId, quantity)),
    );
    expect(response.errors).toBeUndefined();
    const result = response.data!.recordUsageBatch;
    expect(result.receipts.map((receipt) => [receipt.quantity, receipt.status])).toEqual([
      ['3', 'ACCEPTED'],
      ['5', 'REJECTED'],
      ['2', 'ACCEPTED'],
      ['1', 'ACCEPTED'],
      ['1', 'REJECTED'],
      ['0.5', 'REJECTED'],
    ]);
    expect(result).toMatchObject({ accepted: 3, rejected: 3, duplicates: 0 });
    expect(await usedNow(first, accountId, 'api_calls')).toBe('10');
  });

  it(
    'never overshoots when concurrent batches and single events race on one HARD counter',
    async () => {
      const { accountId } = await meteredAccount(first, { included: '500', enforcement: 'HARD' });
      const batches = Array.from({ length: 6 }, (_, b) =>
        recordBatch(
          b % 2 ? first : second,
          Array.from({ length: 100 }, () => one(accountId, '1')),
        ),
      );
      const singles = Array.from({ length: 60 }, (_, i) => recordUsage(i % 2 ? first : second, one(accountId, '1')));
      const [batchResults, singleResults] = await Promise.all([Promise.all(batches), Promise.all(singles)]);
      const accepted =
        batchResults.reduce((sum, response) => sum + response.data!.recordUsageBatch.accepted, 0) +
        singleResults.filter((response) => response.data!.recordUsage.status === 'ACCEPTED').length;
      expect(accepted).toBe(500);
      expect(await usedNow(first, accountId, 'api_calls')).toBe('500');
      await expectLedgerConsistent(first.database.db, accountId);
    },
    HEAVY,
  );
});

describe('grants in HARD batches (R5, R6)', () => {
  it('lets a batch go beyond included by the granted amount, then rejects, in order', async () => {
    const { accountId } = await meteredAccount(first, { included: '10', enforcement: 'HARD', grace: '1' });
    await issueGrantOk(first, { accountId, amount: '5' });
    const result = (
      await recordBatch(
        second,
        Array.from({ length: 20 }, () => one(accountId)),
      )
    ).data!.recordUsageBatch;
    expect(result.receipts.map((receipt) => receipt.reason)).toEqual([
      ...Array(10).fill('INCLUDED'),
      ...Array(5).fill('WITHIN_GRANTS'),
      'WITHIN_GRACE',
      ...Array(4).fill('QUOTA_EXCEEDED'),
    ]);
    expect(await usedNow(first, accountId, 'api_calls')).toBe('16');
  });
});

describe('SOFT and NONE enforcement (R6)', () => {
  it('allows SOFT usage beyond capacity and tracks it as overage', async () => {
    const { accountId } = await meteredAccount(first, { included: '5', enforcement: 'SOFT' });
    expect(await recordUsageOk(first, one(accountId, '5'))).toMatchObject({ status: 'ACCEPTED', reason: 'INCLUDED' });
    expect(await recordUsageOk(first, one(accountId, '3'))).toMatchObject({ status: 'ACCEPTED', reason: 'OVERAGE' });
    const { checkEntitlement } = await gql(
      first,
      `query ($a: ID!) { checkEntitlement(accountId: $a, feature: "api_calls") { used capacity remaining overageUnits } }`,
      {
        a: accountId,
      },
    );
    expect(checkEntitlement).toMatchObject({ used: '8', capacity: '5', remaining: '0', overageUnits: '1' });
  });

  it('only tracks NONE usage, and never refuses unlimited usage', async () => {
    const tracked = await meteredAccount(first, { included: '1', enforcement: 'NONE' });
    const unlimited = await meteredAccount(first, { included: null, enforcement: 'HARD' });
    for (let i = 0; i < 3; i++) expect((await recordUsageOk(first, one(tracked.accountId, '1'))).status).toBe('ACCEPTED');
    expect(await recordUsageOk(first, one(unlimited.accountId, '999999999'))).toMatchObject({ status: 'ACCEPTED', reason: 'INCLUDED' });
    expect(await usedNow(first, tracked.accountId, 'api_calls')).toBe('3');
    expect(await usedNow(first, unlimited.accountId, 'api_calls')).toBe('999999999');
  });
});

describe('access (R4) decides before any counting', () => {
  it('rejects, stores and audits usage of a feature the contract does not include (NOT_ENTITLED)', async () => {
    const { accountId } = await meteredAccount(first, { feature: 'api_calls' });
    const receipt = await recordUsageOk(first, one(accountId, '1', 'tokens'));
    expect(receipt).toMatchObject({ status: 'REJECTED', reason: 'NOT_ENTITLED' });
    const retry = await recordUsageOk(first, { ...one(accountId, '1', 'tokens'), idempotencyKey: receipt.idempotencyKey });
    expect(retry).toMatchObject({ status: 'DUPLICATE', originalStatus: 'REJECTED', reason: 'NOT_ENTITLED' });
    const { counters, events, audit } = await ledgerOf(first.database.db, accountId);
    expect(counters).toHaveLength(0);
    expect(events).toHaveLength(1);
    expect(audit.map((entry) => entry.action).sort()).toEqual(['usage.duplicate', 'usage.rejected']);
  });

  it('rejects usage under a suspended contract (CONTRACT_INACTIVE)', async () => {
    const { accountId } = await meteredAccount(first, {}, { status: 'SUSPENDED' });
    expect(await recordUsageOk(first, one(accountId))).toMatchObject({ status: 'REJECTED', reason: 'CONTRACT_INACTIVE' });
  });
});

describe('exact decimals (R11)', () => {
  it('counts 0.1 + 0.2 as exactly 0.3', async () => {
    const { accountId } = await meteredAccount(first, { included: '1' });
    await recordUsageOk(first, one(accountId, '0.1'));
    await recordUsageOk(second, one(accountId, '0.2'));
    expect(await usedNow(first, accountId, 'api_calls')).toBe('0.3');
    const [counter] = (await ledgerOf(first.database.db, accountId)).counters;
    expect(counter!.used).toBe(300_000n);
  });

  it(
    'sums ten thousand increments of 0.000001 to exactly 0.01',
    async () => {
      const { accountId } = await meteredAccount(first, { included: '1' });
      const sends = Array.from({ length: 10 }, (_, b) =>
        recordBatch(
          b % 2 ? first : second,
          Array.from({ length: 1_000 }, () => one(accountId, '0.000001')),
        ),
      );
      for (const response of await Promise.all(sends)) expect(response.data?.recordUsageBatch.accepted).toBe(1_000);
      expect(await usedNow(first, accountId, 'api_calls')).toBe('0.01');
      await expectLedgerConsistent(first.database.db, accountId);
    },
    HEAVY,
  );
});

describe('receipts and read-your-writes', () => {
  it('shows the usage in checkEntitlement right after recordUsage, on either instance', async () => {
    const { accountId } = await meteredAccount(first, { included: '1000' });
    for (let i = 1; i <= 20; i++) {
      await recordUsageOk(i % 2 ? first : second, one(accountId, '1'));
      expect(await usedNow(i % 2 ? second : first, accountId, 'api_calls')).toBe(String(i));
    }
  });

  it('carries the entitlement after the event in the receipt', async () => {
    const { accountId } = await meteredAccount(first, { included: '10' });
    const { recordUsage: receipt } = await gql(
      first,
      `mutation ($input: UsageEventInput!) { recordUsage(input: $input) { ${RECEIPT_FIELDS} entitlement { used remaining capacity periodStart } } }`,
      { input: one(accountId, '4') },
    );
    expect(receipt.entitlement).toMatchObject({ used: '4', remaining: '6', capacity: '10' });
  });
});
