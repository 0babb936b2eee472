import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineCatalog, publishGrowthPlan, upsertContract } from '../support/fixtures.js';
import { startTestInstance, type TestInstance } from '../support/harness.js';
import { afterTermsBound } from '../support/terms-cache.js';
import {
  defineUsageFeatures,
  expectLedgerConsistent,
  key,
  meteredAccount,
  recordUsage,
  recordUsageOk,
  usedNow,
  type Receipt,
} from '../support/usage-fixtures.js';
import {
  DAY,
  entitlementOf,
  floorHour,
  grantBurn,
  grantById,
  HOUR,
  iso,
  issueGrantOk,
  lineSummary,
  monthly,
  voidGrantOk,
} from './fixtures.js';

let first: TestInstance;
let second: TestInstance;
beforeAll(async () => {
  first = await startTestInstance();
  second = await startTestInstance({ dbName: first.dbName });
  await defineCatalog(first);
  await defineUsageFeatures(first);
  await publishGrowthPlan(first);
});
afterAll(async () => {
  await second.stop();
  await first.stop();
});

const use = (accountId: string, quantity: string, timestamp?: number) =>
  recordUsageOk(first, {
    accountId,
    feature: 'api_calls',
    quantity,
    idempotencyKey: key(),
    ...(timestamp ? { timestamp: iso(timestamp) } : {}),
  });

describe('the seed scenario: 10,000,000 included, a one-time 500,000 grant, usage to 10,600,000', () => {
  it('burns the included amount first, then the grant, counts 100,000 beyond capacity within grace, and denies past capacity + grace', async () => {
    // Growth: 10,000,000 API calls a month, HARD, 100,000 grace.
    const accountId = `acct_seed_${Date.now()}`;
    const anchor = floorHour(Date.now()) - 2 * DAY;
    await upsertContract(first, { id: `ctr_${accountId}`, accountId, planKey: 'growth', startsAt: iso(anchor) });

    // 6,000,000 an hour ago, before the grant exists: included.
    expect(await use(accountId, '6000000', floorHour(Date.now()) - HOUR)).toMatchObject({ status: 'ACCEPTED', reason: 'INCLUDED' });
    const grant = await issueGrantOk(first, { accountId, amount: '500000', reason: 'One-time launch credit' });
    expect(await entitlementOf(first, accountId)).toMatchObject({
      included: '10000000',
      granted: '500000',
      capacity: '10500000',
      remaining: '4500000',
    });

    expect(await use(accountId, '4000000')).toMatchObject({ status: 'ACCEPTED', reason: 'INCLUDED' });
    expect(await use(accountId, '500000')).toMatchObject({ status: 'ACCEPTED', reason: 'WITHIN_GRANTS' });
    expect(await use(accountId, '100000')).toMatchObject({ status: 'ACCEPTED', reason: 'WITHIN_GRACE' });
    // HARD: capacity 10,500,000 + grace 100,000 is reached; one more call is denied and not counted.
    expect(await use(accountId, '1')).toMatchObject({ status: 'REJECTED', reason: 'QUOTA_EXCEEDED' });
    expect(await usedNow(first, accountId, 'api_calls')).toBe('10600000');

    expect(await entitlementOf(first, accountId)).toMatchObject({
      included: '10000000',
      granted: '500000',
      capacity: '10500000',
      used: '10600000',
      remaining: '0',
      overage: '100000',
    });
    expect(await grantById(first, accountId, grant.id)).toMatchObject({
      amount: '500000',
      burned: '500000',
      remaining: '0',
      status: 'DEPLETED',
    });

    const burn = await grantBurn(first, accountId);
    expect(burn).toMatchObject({
      periodStart: iso(anchor),
      included: '10000000',
      used: '10600000',
      includedBurned: '10000000',
      uncovered: '100000',
    });
    expect(burn.grants).toEqual([
      {
        grant: { id: grant.id, status: 'DEPLETED', burned: '500000', remaining: '0' },
        availableAtStart: '500000',
        burned: '500000',
        remainingAtEnd: '0',
      },
    ]);
    expect(lineSummary(burn)).toEqual([
      ['INCLUDED', null, '10000000'],
      ['GRANT', grant.id, '500000'],
      ['UNCOVERED', null, '100000'],
    ]);
    // The grant covers nothing before it was issued.
    expect(Date.parse(burn.lines[1].from)).toBeGreaterThanOrEqual(floorHour(Date.parse(grant.issuedAt)));
  });
});

describe('burn order (R5)', () => {
  it('burns three overlapping grants by priority, then earliest expiry', async () => {
    const anchor = floorHour(Date.now()) - 3 * DAY;
    const { accountId } = await meteredAccount(first, { included: '100', enforcement: 'SOFT' }, { startsAt: iso(anchor) });
    const common = { accountId, effectiveAt: iso(anchor) };
    const lateExpiry = await issueGrantOk(first, { ...common, amount: '30', priority: 10, expiresAt: iso(anchor + 20 * DAY) });
    const firstByPriority = await issueGrantOk(first, { ...common, amount: '20', priority: 5 });
    const earlyExpiry = await issueGrantOk(first, { ...common, amount: '25', priority: 10, expiresAt: iso(anchor + 10 * DAY) });

    expect(await use(accountId, '150', floorHour(Date.now()) - 2 * HOUR)).toMatchObject({ status: 'ACCEPTED', reason: 'WITHIN_GRANTS' });

    expect(await grantById(first, accountId, firstByPriority.id)).toMatchObject({ burned: '20', remaining: '0', status: 'DEPLETED' });
    expect(await grantById(first, accountId, earlyExpiry.id)).toMatchObject({ burned: '25', remaining: '0', status: 'DEPLETED' });
    expect(await grantById(first, accountId, lateExpiry.id)).toMatchObject({ burned: '5', remaining: '25', status: 'ACTIVE' });
    expect(await entitlementOf(first, accountId)).toMatchObject({
      granted: '75',
      capacity: '175',
      used: '150',
      remaining: '25',
      overage: '0',
    });
    const burn = await grantBurn(first, accountId);
    expect(burn.grants.map((entry: any) => entry.grant.id)).toEqual([firstByPriority.id, earlyExpiry.id, lateExpiry.id]);
    expect(lineSummary(burn)).toEqual([
      ['INCLUDED', null, '100'],
      ['GRANT', firstByPriority.id, '20'],
      ['GRANT', earlyExpiry.id, '25'],
      ['GRANT', lateExpiry.id, '5'],
    ]);
  });

  it('stops burning a grant that expires mid-period: later usage is overage (SOFT) or denied (HARD)', async () => {
    const anchor = floorHour(Date.now()) - 70 * DAY;
    const soft = await meteredAccount(first, { included: '100', enforcement: 'SOFT' }, { startsAt: iso(anchor) });
    const hard = await meteredAccount(first, { included: '100', enforcement: 'HARD' }, { startsAt: iso(anchor) });
    const april = monthly(anchor).period(1);
    const start = april.start.getTime();
    const grants = new Map<string, string>();
    for (const { accountId } of [soft, hard]) {
      const grant = await issueGrantOk(first, { accountId, amount: '50', effectiveAt: iso(start), expiresAt: iso(start + 10 * DAY) });
      expect(grant.status).toBe('EXPIRED');
      grants.set(accountId, grant.id);
      expect(await use(accountId, '120', start + 2 * DAY)).toMatchObject({ status: 'ACCEPTED', reason: 'WITHIN_GRANTS' });
    }
    // After the expiry the grant keeps the 20 it covered, and adds nothing more.
    expect(await use(soft.accountId, '30', start + 15 * DAY)).toMatchObject({ status: 'ACCEPTED', reason: 'OVERAGE' });
    expect(await use(hard.accountId, '30', start + 15 * DAY)).toMatchObject({ status: 'REJECTED', reason: 'QUOTA_EXCEEDED' });
    expect(await entitlementOf(first, hard.accountId, 'api_calls', iso(start + 15 * DAY))).toMatchObject({
      granted: '20',
      capacity: '120',
      used: '120',
    });
    expect(await entitlementOf(first, hard.accountId, 'api_calls', iso(start + 5 * DAY))).toMatchObject({ granted: '50', capacity: '150' });

    expect(await grantById(first, soft.accountId, grants.get(soft.accountId)!)).toMatchObject({
      burned: '20',
      remaining: '0',
      status: 'EXPIRED',
    });
    const burn = await grantBurn(first, soft.accountId, 'api_calls', iso(start));
    expect(burn).toMatchObject({ periodStart: iso(start), periodEnd: iso(april.end), used: '150', includedBurned: '100', uncovered: '30' });
    expect(burn.grants[0]).toMatchObject({ availableAtStart: '50', burned: '20', remainingAtEnd: '30' });
    expect(burn.lines).toEqual([
      { source: 'INCLUDED', grantId: null, from: iso(start + 2 * DAY), to: iso(start + 2 * DAY + HOUR), units: '100' },
      { source: 'GRANT', grantId: grants.get(soft.accountId), from: iso(start + 2 * DAY), to: iso(start + 2 * DAY + HOUR), units: '20' },
      { source: 'UNCOVERED', grantId: null, from: iso(start + 15 * DAY), to: iso(start + 15 * DAY + HOUR), units: '30' },
    ]);
  });

  it('carries a grant across two periods: each period burns from what the earlier ones left', async () => {
    const anchor = floorHour(Date.now()) - 70 * DAY;
    const { accountId } = await meteredAccount(first, { included: '100', enforcement: 'SOFT' }, { startsAt: iso(anchor) });
    const periods = monthly(anchor);
    const [march, april] = [periods.period(0), periods.period(1)];
    const grant = await issueGrantOk(first, { accountId, amount: '100', effectiveAt: iso(anchor) });
    await use(accountId, '130', march.start.getTime() + 2 * DAY);
    await use(accountId, '150', april.start.getTime() + 2 * DAY);

    const [marchBurn, aprilBurn] = [
      await grantBurn(first, accountId, 'api_calls', iso(march.start)),
      await grantBurn(first, accountId, 'api_calls', iso(april.start)),
    ];
    expect(marchBurn.grants[0]).toMatchObject({ availableAtStart: '100', burned: '30', remainingAtEnd: '70' });
    expect(aprilBurn.grants[0]).toMatchObject({ availableAtStart: '70', burned: '50', remainingAtEnd: '20' });
    expect(await grantById(first, accountId, grant.id)).toMatchObject({ burned: '80', remaining: '20', status: 'ACTIVE' });
    // Capacity in each period: included + what earlier periods left of the grant.
    expect(await entitlementOf(first, accountId, 'api_calls', iso(april.start.getTime() + 5 * DAY))).toMatchObject({
      granted: '70',
      capacity: '170',
      used: '150',
    });
    expect(await entitlementOf(first, accountId)).toMatchObject({
      periodStart: iso(periods.current.start),
      granted: '20',
      capacity: '120',
      used: '0',
    });
  });
});

describe('grants and HARD enforcement (R5, R6)', () => {
  it('reflects a grant issued and voided mid-period on every instance (on another within the grants cache bound)', async () => {
    const { accountId } = await meteredAccount(first, { included: '10', enforcement: 'HARD' });
    await use(accountId, '10');
    const one = () => ({ accountId, feature: 'api_calls', quantity: '1', idempotencyKey: key() });
    expect(await recordUsageOk(second, one())).toMatchObject({ status: 'REJECTED', reason: 'QUOTA_EXCEEDED' });
    const grant = await issueGrantOk(first, { accountId, amount: '5' });
    // The second instance's grants cache learns of a write made on the first within its bound.
    await afterTermsBound();
    expect(await recordUsageOk(second, one())).toMatchObject({ status: 'ACCEPTED', reason: 'WITHIN_GRANTS' });
    await voidGrantOk(first, grant.id);
    await afterTermsBound();
    // The void keeps the unit the grant covered; nothing more fits.
    expect(await recordUsageOk(second, one())).toMatchObject({ status: 'REJECTED', reason: 'QUOTA_EXCEEDED' });
    expect(await entitlementOf(second, accountId)).toMatchObject({ granted: '1', capacity: '11', used: '11', overage: '0' });
  });

  it('accepts exactly 80 of 100 concurrent 1-unit requests against 50 included + a 30-unit grant, across two instances', async () => {
    const { accountId } = await meteredAccount(first, { included: '50', enforcement: 'HARD', grace: '0' });
    const grant = await issueGrantOk(first, { accountId, amount: '30' });
    const responses = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        recordUsage(i % 2 ? second : first, { accountId, feature: 'api_calls', quantity: '1', idempotencyKey: key() }),
      ),
    );
    const receipts = responses.map((response) => {
      expect(response.errors).toBeUndefined();
      return response.data!.recordUsage;
    });
    const accepted = receipts.filter((receipt) => receipt.status === 'ACCEPTED');
    expect(accepted).toHaveLength(80);
    expect(accepted.filter((receipt) => receipt.reason === 'INCLUDED')).toHaveLength(50);
    expect(accepted.filter((receipt) => receipt.reason === 'WITHIN_GRANTS')).toHaveLength(30);
    expect(new Set(receipts.filter((receipt) => receipt.status === 'REJECTED').map((receipt) => receipt.reason))).toEqual(
      new Set(['QUOTA_EXCEEDED']),
    );
    expect(await usedNow(first, accountId, 'api_calls')).toBe('80');
    expect(await grantById(first, accountId, grant.id)).toMatchObject({ burned: '30', remaining: '0', status: 'DEPLETED' });
    await expectLedgerConsistent(first.database.db, accountId);
  });

  it('never leaves HARD usage uncovered when a void races concurrent ingestion on two instances', async () => {
    const { accountId } = await meteredAccount(first, { included: '20', enforcement: 'HARD', grace: '0' });
    const grant = await issueGrantOk(first, { accountId, amount: '60' });
    // Eight senders in a row each, alternating instances; the void goes out while they run.
    const receipts: Receipt[] = [];
    let voiding: Promise<Record<string, any>> | undefined;
    await Promise.all(
      Array.from({ length: 8 }, async (_, sender) => {
        for (let i = 0; i < 15; i++) {
          const response = await recordUsage((sender + i) % 2 ? second : first, {
            accountId,
            feature: 'api_calls',
            quantity: '1',
            idempotencyKey: key(),
          });
          receipts.push(response.data!.recordUsage);
          if (receipts.length === 30) voiding = voidGrantOk(second, grant.id, 'Withdrawn during a traffic burst');
        }
      }),
    );
    const voided = await voiding!;
    const accepted = receipts.filter((receipt) => receipt.status === 'ACCEPTED').length;

    const after = await grantById(first, accountId, grant.id);
    expect(after.status).toBe('VOIDED');
    // Every accepted unit is covered by the included amount or by the grant's burn: no overage under HARD, grace 0.
    expect(await entitlementOf(first, accountId)).toMatchObject({
      used: String(accepted),
      capacity: String(20 + Number(after.burned)),
      overage: '0',
    });
    expect(Number(after.burned)).toBe(accepted - 20);
    expect(accepted).toBeGreaterThanOrEqual(30);
    expect(accepted).toBeLessThan(80);
    expect((await grantBurn(first, accountId)).uncovered).toBe('0');
    expect(Date.parse(voided.voidedAt)).toBeGreaterThan(0);
    await expectLedgerConsistent(first.database.db, accountId);
  });

  it('voids mid-period: past burn stays, usage after the void does not burn the grant, even within the hour', async () => {
    const anchor = floorHour(Date.now()) - 3 * DAY;
    const { accountId } = await meteredAccount(first, { included: '100', enforcement: 'HARD', grace: '10' }, { startsAt: iso(anchor) });
    const grant = await issueGrantOk(first, { accountId, amount: '50', effectiveAt: iso(anchor) });
    expect(await use(accountId, '120', floorHour(Date.now()) - 2 * HOUR)).toMatchObject({ status: 'ACCEPTED', reason: 'WITHIN_GRANTS' });
    expect(await use(accountId, '5')).toMatchObject({ status: 'ACCEPTED', reason: 'WITHIN_GRANTS' });

    const voided = await voidGrantOk(first, grant.id, 'Credit withdrawn after the dispute was settled');
    expect(voided).toMatchObject({ status: 'VOIDED', burned: '25', remaining: '0' });
    expect(await entitlementOf(first, accountId)).toMatchObject({
      granted: '25',
      capacity: '125',
      used: '125',
      remaining: '0',
      overage: '0',
    });

    // Grace still applies after the void, and what it lets through is not burned from the voided grant.
    expect(await use(accountId, '4')).toMatchObject({ status: 'ACCEPTED', reason: 'WITHIN_GRACE' });
    expect(await use(accountId, '7')).toMatchObject({ status: 'REJECTED', reason: 'QUOTA_EXCEEDED' });
    expect(await grantById(first, accountId, grant.id)).toMatchObject({
      burned: '25',
      status: 'VOIDED',
      voidReason: 'Credit withdrawn after the dispute was settled',
    });
    const burn = await grantBurn(first, accountId);
    expect(burn).toMatchObject({ used: '129', includedBurned: '100', uncovered: '4' });
    expect(lineSummary(burn)).toEqual([
      ['INCLUDED', null, '100'],
      ['GRANT', grant.id, '25'],
      ['UNCOVERED', null, '4'],
    ]);
    expect(burn.lines[2].from).toBe(voided.voidedAt);
  });
});
