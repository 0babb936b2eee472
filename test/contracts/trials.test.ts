/**
 * Trials (R18) through the wire: the status flips at `trialEndsAt` in the very next check,
 * with the trial pass configured an hour apart (nothing has to run); CANCEL loses access at
 * the instant; the end is audited once and `contract.trial_ended` is delivered once, even
 * with two instances settling it at the same time; no base fee for trial time.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHECK, defineCatalog, errorCode, gql, publishPlan, UPSERT_CONTRACT } from '../support/fixtures.js';
import { startTestInstance, type TestInstance } from '../support/harness.js';
import { RATING_ENV, invoicePreview, invoicePreviewOk } from '../support/rating-fixtures.js';
import { Receiver } from '../webhooks/receiver.js';

/** The trial pass runs an hour apart: every flip seen here is derived at read time. */
const ENV = { ...RATING_ENV, TRIAL_SWEEP_SECONDS: '3600', WEBHOOKS_ALLOW_PRIVATE: 'true' };
const DAY = 86_400_000;
const TRIAL_FIELDS = 'id status trialEndsAt trialConversion canceledAt statusHistory { status at }';
const UPSERT = `mutation ($input: ContractInput!) { upsertContract(input: $input) { ${TRIAL_FIELDS} } }`;
const CONTRACT = `query ($id: ID!) { _entities(representations: [{ __typename: "Contract", id: $id }]) { ... on Contract { ${TRIAL_FIELDS} } } }`;
const CREATE_ENDPOINT = `mutation ($input: WebhookEndpointInput!) { createWebhookEndpoint(input: $input) { secret endpoint { id } } }`;

let a: TestInstance;
let b: TestInstance;
let receiver: Receiver;
let hooks: string;

beforeAll(async () => {
  a = await startTestInstance({ env: ENV });
  b = await startTestInstance({ env: ENV, dbName: a.dbName });
  receiver = new Receiver();
  hooks = await receiver.start();
  await defineCatalog(a);
  await publishPlan(a, {
    key: 'pro',
    name: 'Pro',
    currency: 'USD',
    baseFee: '300',
    entitlements: [{ feature: 'api_calls', included: '1000', enforcement: 'HARD' }],
  });
});
afterAll(async () => {
  await receiver.stop();
  await b.stop();
  await a.stop();
});

const iso = (ms: number) => new Date(ms).toISOString();
const sleepUntil = (ms: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms - Date.now())));
const check = (instance: TestInstance, accountId: string) =>
  gql(instance, CHECK, { accountId, feature: 'api_calls', requestedUnits: '1' }).then((data) => data.checkEntitlement);
const contract = (instance: TestInstance, id: string) => gql(instance, CONTRACT, { id }).then((data) => data._entities[0]);
const trialAudits = (id: string) => a.database.db.collection('audit_log').find({ targetId: id, action: 'contract.trial_ended' }).toArray();
const trialEvents = (accountId: string) =>
  a.database.db.collection('webhook_events').find({ accountId, type: 'contract.trial_ended' }).toArray();

async function waitUntil(condition: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A 14-day trial that started 14 days ago less `leftMs`: it ends `leftMs` from now. */
async function trial(id: string, leftMs: number, trialConversion?: 'ACTIVATE' | 'CANCEL') {
  const trialEndsAt = Date.now() + leftMs;
  const input = {
    id,
    accountId: `acct_${id}`,
    planKey: 'pro',
    startsAt: iso(trialEndsAt - 14 * DAY),
    trialEndsAt: iso(trialEndsAt),
    trialConversion,
  };
  const created = (await gql(a, UPSERT, { input })).upsertContract;
  return { created, trialEndsAt };
}

describe('a trial ending (R18)', () => {
  it('flips to ACTIVE at its instant in a check, with no job running', async () => {
    const { created, trialEndsAt } = await trial('ctr_t_active', 5_000);
    expect(created).toMatchObject({ status: 'TRIALING', trialEndsAt: iso(trialEndsAt), trialConversion: 'ACTIVATE' });
    expect(await check(a, 'acct_ctr_t_active')).toMatchObject({ allowed: true, reason: 'INCLUDED' });
    expect((await contract(a, 'ctr_t_active')).status).toBe('TRIALING');
    expect(await trialAudits('ctr_t_active')).toHaveLength(0);

    await sleepUntil(trialEndsAt + 20);
    const read = await contract(b, 'ctr_t_active');
    expect(read).toMatchObject({ status: 'ACTIVE', canceledAt: null });
    expect(read.statusHistory.at(-1)).toEqual({ status: 'ACTIVE', at: iso(trialEndsAt) });
    expect(await check(b, 'acct_ctr_t_active')).toMatchObject({ allowed: true, reason: 'INCLUDED' });

    // Stored and audited once, dated at the instant, by the reads' trigger (the pass is an hour away).
    await waitUntil(async () => (await trialAudits('ctr_t_active')).length === 1);
    const [entry] = await trialAudits('ctr_t_active');
    expect(entry).toMatchObject({ actor: 'system:trial', at: new Date(trialEndsAt), accountId: 'acct_ctr_t_active' });
    expect(entry!.after).toMatchObject({ status: 'ACTIVE', trialConversion: 'ACTIVATE' });
    await waitUntil(
      async () => (await a.database.db.collection('contracts').findOne({ _id: 'ctr_t_active' as never }))?.trialEnd?.announced === true,
    );
    expect(await trialEvents('acct_ctr_t_active')).toHaveLength(1);
  });

  it('with CANCEL, loses access at its instant', async () => {
    const { trialEndsAt } = await trial('ctr_t_cancel', 5_000, 'CANCEL');
    expect(await check(a, 'acct_ctr_t_cancel')).toMatchObject({ allowed: true });
    await sleepUntil(trialEndsAt + 20);
    expect(await check(a, 'acct_ctr_t_cancel')).toMatchObject({ allowed: false, reason: 'CONTRACT_INACTIVE' });
    expect(await contract(b, 'ctr_t_cancel')).toMatchObject({ status: 'CANCELED', canceledAt: iso(trialEndsAt) });
    const recorded = await gql(b, `mutation ($input: UsageEventInput!) { recordUsage(input: $input) { status reason } }`, {
      input: { accountId: 'acct_ctr_t_cancel', feature: 'api_calls', quantity: '1', idempotencyKey: 'after-cancel' },
    });
    expect(recorded.recordUsage).toEqual({ status: 'REJECTED', reason: 'CONTRACT_INACTIVE' });
    await waitUntil(async () => (await trialAudits('ctr_t_cancel')).length === 1);
    expect((await trialAudits('ctr_t_cancel'))[0]!.after).toMatchObject({ status: 'CANCELED' });
  });

  it('is audited and delivered once when two instances settle it at the same time', async () => {
    const accountId = 'acct_ctr_t_race';
    const url = `${hooks}/hooks/${accountId}`;
    const { createWebhookEndpoint } = await gql(a, CREATE_ENDPOINT, { input: { url, events: ['contract.trial_ended'], accountId } });
    receiver.trust(url, createWebhookEndpoint.secret);
    const { trialEndsAt } = await trial('ctr_t_race', 1_500);
    await sleepUntil(trialEndsAt + 20);

    const [checks] = await Promise.all([
      Promise.all([a, b, a, b, a, b].map((instance) => check(instance, accountId))),
      a.services.trials.pass(),
      b.services.trials.pass(),
      a.services.trials.settle('ctr_t_race'),
      b.services.trials.settle('ctr_t_race'),
    ]);
    expect(checks.every((decision) => decision.allowed)).toBe(true);
    await a.services.trials.pass();
    await b.services.trials.pass();

    await waitUntil(() => receiver.received.some((delivery) => delivery.data.contractId === 'ctr_t_race'));
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await trialAudits('ctr_t_race')).toHaveLength(1);
    expect(await trialEvents(accountId)).toHaveLength(1);
    const delivered = [...receiver.distinct().values()].filter((delivery) => delivery.data.contractId === 'ctr_t_race');
    expect(delivered).toHaveLength(1);
    expect(delivered[0]).toMatchObject({
      type: 'contract.trial_ended',
      data: { contractId: 'ctr_t_race', accountId, status: 'ACTIVE', trialEndsAt: iso(trialEndsAt), endedAt: iso(trialEndsAt) },
    });
    const stored = await a.database.db.collection('contracts').findOne({ _id: 'ctr_t_race' as never });
    expect(stored).toMatchObject({ status: 'ACTIVE', trialEnd: { status: 'ACTIVE', announced: true } });
    expect(stored!.statusHistory.filter((change: { status: string }) => change.status === 'ACTIVE')).toHaveLength(1);
  });
});

describe('a trial end owed after a crash', () => {
  it('is announced by the pass, and a replay after the audit entry writes nothing twice', async () => {
    const trialEndsAt = new Date('2026-11-20T00:00:00Z');
    // What a process that stored the end and died before announcing it leaves behind.
    await a.database.db.collection('contracts').insertOne({
      _id: 'ctr_t_crash' as never,
      accountId: 'acct_t_crash',
      planKey: 'pro',
      planVersion: 1,
      planHistory: [{ planKey: 'pro', planVersion: 1, effectiveAt: new Date('2026-11-06T00:00:00Z') }],
      status: 'ACTIVE',
      statusHistory: [
        { status: 'TRIALING', at: new Date('2026-11-06T00:00:00Z') },
        { status: 'ACTIVE', at: trialEndsAt },
      ],
      canceledAt: null,
      startsAt: new Date('2026-11-06T00:00:00Z'),
      endsAt: null,
      billingAnchor: new Date('2026-11-06T00:00:00Z'),
      trialEndsAt,
      trialConversion: 'ACTIVATE',
      trialEnd: { at: trialEndsAt, status: 'ACTIVE', announced: false },
      overrides: {},
      revision: 2,
      createdAt: new Date('2026-11-06T00:00:00Z'),
      updatedAt: new Date(),
    });
    expect(await b.services.trials.pass()).toBeGreaterThanOrEqual(1);
    expect(await trialAudits('ctr_t_crash')).toHaveLength(1);
    expect(await trialEvents('acct_t_crash')).toHaveLength(1);
    // Died after the audit entry and the event, before clearing the flag: the replay adds nothing.
    await a.database.db.collection('contracts').updateOne({ _id: 'ctr_t_crash' as never }, { $set: { 'trialEnd.announced': false } });
    await Promise.all([a.services.trials.pass(), b.services.trials.pass()]);
    expect(await trialAudits('ctr_t_crash')).toHaveLength(1);
    expect(await trialEvents('acct_t_crash')).toHaveLength(1);
    expect((await a.database.db.collection('contracts').findOne({ _id: 'ctr_t_crash' as never }))!.trialEnd.announced).toBe(true);
  });
});

describe('a failed outbox write at the trial end', () => {
  it('leaves the announcement owed; the pass then writes the webhook once, and the audit entry stays single', async () => {
    const accountId = 'acct_ctr_t_fault';
    // Every attempt of instance a fails before its outbox write until the fault is used up.
    a.services.webhooks.faults.arm({ accountId, times: 2 });
    const { trialEndsAt } = await trial('ctr_t_fault', 1_000);
    await sleepUntil(trialEndsAt + 20);
    await expect(a.services.trials.settle('ctr_t_fault')).rejects.toThrow(/injected fault/);
    // Access follows the instant all the same; the audit entry was written before the failure.
    expect(await check(a, accountId)).toMatchObject({ allowed: true });
    expect(await trialAudits('ctr_t_fault')).toHaveLength(1);
    expect(await trialEvents(accountId)).toHaveLength(0);
    const owed = await a.database.db.collection('contracts').findOne({ _id: 'ctr_t_fault' as never });
    expect(owed).toMatchObject({ status: 'ACTIVE', trialEnd: { announced: false } });

    await b.services.trials.pass();
    await waitUntil(async () => (await trialEvents(accountId)).length === 1);
    await Promise.all([a.services.trials.pass(), b.services.trials.pass()]);
    expect(await trialEvents(accountId)).toHaveLength(1);
    expect(await trialAudits('ctr_t_fault')).toHaveLength(1);
    expect((await a.database.db.collection('contracts').findOne({ _id: 'ctr_t_fault' as never }))!.trialEnd.announced).toBe(true);
  });
});

describe('trial input', () => {
  const base = { accountId: 'acct_t_input', planKey: 'pro', startsAt: '2026-01-01T00:00:00Z' };

  it('validates trialEndsAt against startsAt and endsAt, naming the field', async () => {
    for (const input of [
      { ...base, id: 'ctr_t_v1', trialEndsAt: '2026-01-01T00:00:00Z' },
      { ...base, id: 'ctr_t_v2', trialEndsAt: '2026-03-01T00:00:00Z', endsAt: '2026-02-01T00:00:00Z' },
    ]) {
      const response = await a.graphql(UPSERT, { input });
      expect(errorCode(response)).toBe('BAD_USER_INPUT');
      expect(response.errors![0]!.extensions!.field).toBe('trialEndsAt');
    }
    expect(errorCode(await a.graphql(UPSERT, { input: { ...base, id: 'ctr_t_v3', trialConversion: 'LATER' } }))).toBe('BAD_USER_INPUT');
    expect(
      await a.database.db.collection('contracts').countDocuments({ _id: { $in: ['ctr_t_v1', 'ctr_t_v2', 'ctr_t_v3'] } as never }),
    ).toBe(0);
  });

  it('keeps a running trial on a re-sync (default status), may move it forward, and refuses to date it back', async () => {
    const ends = Date.now() + 3_600_000;
    const input = { ...base, id: 'ctr_t_resync', trialEndsAt: iso(ends) };
    await gql(a, UPSERT, { input });
    const resynced = (await gql(a, UPSERT_CONTRACT, { input: { ...base, id: 'ctr_t_resync' } })).upsertContract;
    expect(resynced.status).toBe('TRIALING');
    const moved = (await gql(a, UPSERT, { input: { ...input, trialEndsAt: iso(ends + DAY) } })).upsertContract;
    expect(moved.trialEndsAt).toBe(iso(ends + DAY));
    const back = await a.graphql(UPSERT, { input: { ...input, trialEndsAt: '2026-02-01T00:00:00Z' } });
    expect(errorCode(back)).toBe('BAD_USER_INPUT');
    expect(back.errors![0]!.message).toMatch(/in the past/);
    const audits = await a.database.db.collection('audit_log').countDocuments({ targetId: 'ctr_t_resync', action: 'contract.upserted' });
    expect(audits).toBe(3);
  });

  it('refuses to change the trial of a contract no longer in trial', async () => {
    const input = { ...base, id: 'ctr_t_over', startsAt: '2026-10-01T00:00:00Z', trialEndsAt: '2026-10-15T00:00:00Z' };
    expect((await gql(a, UPSERT, { input })).upsertContract.status).toBe('ACTIVE');
    const changed = await a.graphql(UPSERT, { input: { ...input, trialEndsAt: '2026-10-20T00:00:00Z' } });
    expect(errorCode(changed)).toBe('BAD_USER_INPUT');
    expect(changed.errors![0]!.message).toMatch(/no longer in trial/);
    // A late TRIALING from the billing system does not restart the trial.
    expect((await gql(a, UPSERT, { input: { ...input, status: 'TRIALING' } })).upsertContract.status).toBe('ACTIVE');
  });
});

describe('billing a trial', () => {
  it('charges no base fee for trial time', async () => {
    // November has 30 days; trial until the 15th: 16 of 30 days billed, 300 × 16/30 = 160.
    await gql(a, UPSERT, {
      input: {
        id: 'ctr_t_bill',
        accountId: 'acct_t_bill',
        planKey: 'pro',
        startsAt: '2026-11-01T00:00:00Z',
        trialEndsAt: '2026-11-15T00:00:00Z',
      },
    });
    const november = await invoicePreviewOk(a, 'ctr_t_bill', '2026-11-01T00:00:00Z');
    const fees = november.lines.filter((line: any) => line.kind === 'BASE_FEE');
    expect(fees).toHaveLength(1);
    expect(fees[0]).toMatchObject({ amount: '160.00', prorated: true, periodStart: '2026-11-15T00:00:00.000Z' });
    expect(fees[0].description).toContain('prorated 16 of 30 days');
  });

  it('bills nothing for a trial canceled at its end, and nothing after it', async () => {
    await gql(a, UPSERT, {
      input: {
        id: 'ctr_t_gone',
        accountId: 'acct_t_gone',
        planKey: 'pro',
        startsAt: '2026-10-01T00:00:00Z',
        trialEndsAt: '2026-10-15T00:00:00Z',
        trialConversion: 'CANCEL',
      },
    });
    const october = await invoicePreviewOk(a, 'ctr_t_gone', '2026-10-01T00:00:00Z');
    expect(october.lines.filter((line: any) => line.kind === 'BASE_FEE')).toEqual([]);
    expect(october.total).toBe('0.00');
    const november = await invoicePreview(a, 'ctr_t_gone', '2026-11-01T00:00:00Z');
    expect(errorCode(november)).toBe('BAD_USER_INPUT');
  });
});
