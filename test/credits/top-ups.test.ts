/**
 * Auto top-ups (R14) against the real wire server: `setAutoTopUp` (grants:write, audited)
 * issues a PREPAID grant on the credit feature when the credits left fall below `below`,
 * exactly once per crossing: under a race of both burning features on two instances, and
 * with a real instance killed (SIGKILL) in the middle of that race. Each top-up is audited
 * as system:auto-top-up and recorded once as a credits.topped_up webhook event.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { gql } from '../support/fixtures.js';
import { invoicePreviewOk } from '../support/rating-fixtures.js';
import { signToken, startTestInstance, TEST_JWT_SECRET, type TestInstance } from '../support/harness.js';
import { key, recordUsageOk } from '../support/usage-fixtures.js';
import { aiAccount, creditCounter, creditEntitlement, defineAiFeatures, SET_AUTO_TOP_UP } from './fixtures.js';

let one: TestInstance;
let two: TestInstance;
const children: ChildProcess[] = [];
beforeAll(async () => {
  const env = { USAGE_LEASE_SECONDS: '1' };
  one = await startTestInstance({ env });
  two = await startTestInstance({ dbName: one.dbName, env });
  await defineAiFeatures(one);
});
afterAll(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await two?.stop();
  await one?.stop();
});

const topUp = (instance: TestInstance, accountId: string, input: Record<string, unknown> = {}) =>
  gql(instance, SET_AUTO_TOP_UP, {
    input: { accountId, feature: 'ai_credits', below: '10000', amount: '50000', price: '49.00', ...input },
  });

async function topUpGrants(accountId: string) {
  return one.database.db.collection<any>('grants').find({ accountId, feature: 'ai_credits', issuedBy: 'system:auto-top-up' }).toArray();
}

/** Waits until nothing is in flight and the top-ups have stayed the same for a repair pass or two. */
async function settledTopUps(accountId: string, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  let last = -1;
  let stableSince = Date.now();
  for (;;) {
    const inFlight = await one.database.db.collection('usage_postings').countDocuments({ accountId, state: 'RESERVED' });
    const grants = await topUpGrants(accountId);
    if (grants.length !== last) {
      last = grants.length;
      stableSince = Date.now();
    }
    if (inFlight === 0 && grants.length > 0 && Date.now() - stableSince > 5_000) return grants;
    if (Date.now() > deadline) return grants;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** One request of 1,000 credits: 400 gpt_large or 10,000 gpt_small. */
const burn = (url: string, token: string, accountId: string, i: number) =>
  fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({
      query: 'mutation ($input: UsageEventInput!) { recordUsage(input: $input) { status } }',
      variables: {
        input: { accountId, feature: i % 2 ? 'gpt_large' : 'gpt_small', quantity: i % 2 ? '400' : '10000', idempotencyKey: key() },
      },
    }),
  })
    .then((response) => response.json() as Promise<any>)
    .then((body) => body.data?.recordUsage?.status ?? 'FAILED')
    .catch(() => 'FAILED');

describe('setAutoTopUp', () => {
  it('stores the setting (audited, readable on Account), refuses bad input and customer tokens', async () => {
    const { accountId } = await aiAccount(one);
    expect((await topUp(one, accountId)).setAutoTopUp).toEqual({
      accountId,
      feature: 'ai_credits',
      below: '10000',
      amount: '50000',
      price: '49',
      enabled: true,
    });
    const read = await gql(
      two,
      `query ($id: ID!) { _entities(representations: [{ __typename: "Account", id: $id }]) { ... on Account { autoTopUps { feature below amount price enabled } } } }`,
      {
        id: accountId,
      },
    );
    expect(read._entities[0].autoTopUps).toEqual([{ feature: 'ai_credits', below: '10000', amount: '50000', price: '49', enabled: true }]);
    const audit = await one.database.db.collection<any>('audit_log').findOne({ accountId, action: 'auto_top_up.set' });
    expect(audit).toMatchObject({ actor: 'test-operator', targetType: 'AutoTopUp' });

    const bad = async (input: Record<string, unknown>) =>
      (await one.graphql(SET_AUTO_TOP_UP, { input: { accountId, feature: 'ai_credits', below: '1', amount: '1', ...input } })).errors?.[0];
    expect(await bad({ feature: 'nope' })).toMatchObject({ extensions: { code: 'BAD_USER_INPUT', field: 'input.feature' } });
    expect(await bad({ amount: '0' })).toMatchObject({ extensions: { code: 'BAD_USER_INPUT', field: 'input.amount' } });
    expect(await bad({ price: '-1' })).toMatchObject({ extensions: { code: 'BAD_USER_INPUT', field: 'input.price' } });
    const customer = await signToken({ account_id: accountId });
    const refused = await one.graphql(
      SET_AUTO_TOP_UP,
      { input: { accountId, feature: 'ai_credits', below: '1', amount: '1' } },
      { token: customer },
    );
    expect(refused.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  });

  it('a disabled top-up issues nothing; setting it below an already low balance tops up at once', async () => {
    const { accountId } = await aiAccount(one, { credits: '100' });
    await topUp(one, accountId, { below: '50', amount: '100', enabled: false });
    await recordUsageOk(one, { accountId, feature: 'gpt_large', quantity: '30', idempotencyKey: key() }); // 75 credits
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    expect(await topUpGrants(accountId)).toHaveLength(0);
    await topUp(two, accountId, { below: '50', amount: '100' });
    const grants = await topUpGrants(accountId);
    expect(grants).toHaveLength(1);
    expect(grants[0]).toMatchObject({ kind: 'PREPAID', amount: 100_000_000n, price: '49', issuedBy: 'system:auto-top-up' });
    expect(await creditEntitlement(one, accountId, 'ai_credits')).toMatchObject({ capacity: '200', remaining: '125', granted: '100' });
  });
});

describe('billing', () => {
  it('a priced top-up is one TOP_UP line at its price; burning features are rated on the credit feature only', async () => {
    const { accountId, contractId } = await aiAccount(one, {
      credits: '100',
      baseFee: '10',
      enforcement: 'SOFT',
      overage: { unitPrice: '0.5' },
    });
    await recordUsageOk(one, { accountId, feature: 'gpt_large', quantity: '30', idempotencyKey: key() }); // 75 credits
    await topUp(one, accountId, { below: '50', amount: '100', price: '49.99' });
    await recordUsageOk(one, { accountId, feature: 'gpt_small', quantity: '500', idempotencyKey: key() }); // 50 more: 125 of 200
    const invoice = await invoicePreviewOk(two, contractId);
    const grants = await topUpGrants(accountId);
    expect(grants).toHaveLength(1);
    const lines = invoice.lines.filter((line: any) => line.kind === 'TOP_UP');
    expect(lines).toEqual([expect.objectContaining({ feature: 'ai_credits', quantity: '1', unitPrice: '49.99', amount: '49.99' })]);
    expect(lines[0].description).toMatch(/^AI credits auto top-up on \d{4}-\d\d-\d\d: 100 credit$/);
    // No line for the burning features: their usage is the credit feature's.
    expect(invoice.lines.map((line: any) => line.feature).filter(Boolean)).not.toContain('gpt_large');
    // 125 credits used: 100 included, 25 covered by the top-up (credited), nothing beyond.
    const usage = invoice.usage.find((entry: any) => entry.feature === 'ai_credits');
    expect(usage).toMatchObject({ used: '125', coveredByIncluded: '100', coveredByGrants: '25', overage: '0' });
    expect(invoice.total).toBe('59.99');

    // A second crossing (150 of 200 used is 50 left, not below; 151 is) is a second top-up and line.
    await recordUsageOk(two, { accountId, feature: 'gpt_large', quantity: '10.4', idempotencyKey: key() }); // 26 more: 151
    const deadline = Date.now() + 10_000;
    while ((await topUpGrants(accountId)).length < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
    expect((await topUpGrants(accountId)).map((grant) => grant.idempotencyKey.slice(-2))).toEqual([':0', ':1']);
    const again = await invoicePreviewOk(one, contractId);
    expect(again.lines.filter((line: any) => line.kind === 'TOP_UP')).toHaveLength(2);
    expect(again.total).toBe('109.98');
  });
});

describe('the auto top-up of the issue: 10,000 left on 100,000 ai_credits, +50,000', () => {
  it('fires once under a race of both features on two instances at the HARD limit', async () => {
    const { accountId } = await aiAccount(one);
    await topUp(one, accountId);
    const token = await signToken();
    // 140 requests of 1,000 credits: the balance crosses 10,000 left once (the top-up lifts it to 60,000 left).
    await Promise.all(Array.from({ length: 140 }, (_, i) => burn(i % 2 ? one.url : two.url, token, accountId, i)));
    const grants = await settledTopUps(accountId);
    expect(grants).toHaveLength(1);
    expect(grants[0]).toMatchObject({ kind: 'PREPAID', amount: 50_000_000_000n, price: '49' });
    const counter = await creditCounter(one, accountId);
    expect(BigInt(counter.used)).toBeLessThanOrEqual(140_000_000_000n);
    expect(BigInt(counter.used)).toBeGreaterThan(90_000_000_000n);

    const audit = await one.database.db.collection<any>('audit_log').find({ accountId, action: 'grant.issued' }).toArray();
    expect(audit.map((entry) => entry.actor)).toEqual(['system:auto-top-up']);
    const webhooks = await one.database.db.collection<any>('webhook_events').find({ accountId, type: 'credits.topped_up' }).toArray();
    expect(webhooks).toHaveLength(1);
    expect(webhooks[0].data).toMatchObject({ grantId: grants[0]._id, feature: 'ai_credits', amount: '50000', price: '49' });
  });

  it('fires once when a real instance is killed (SIGKILL) in the middle of the race', async () => {
    const { accountId } = await aiAccount(one);
    await topUp(one, accountId);
    const token = await signToken();
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      env: {
        ...process.env,
        NODE_ENV: 'production',
        MONGODB_URI: inject('mongoUri'),
        MONGODB_DB: one.dbName,
        PORT: '0',
        HOST: '127.0.0.1',
        LOG_LEVEL: 'info',
        AUTH_JWT_SECRET: TEST_JWT_SECRET,
        USAGE_LEASE_SECONDS: '1',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    const url = await new Promise<string>((resolve, reject) => {
      let buffer = '';
      child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
        buffer += chunk;
        const match = /"url":"([^"]+)"/.exec(buffer);
        if (match && buffer.includes('Allotment subgraph listening')) resolve(match[1]!);
      });
      child.once('exit', () => reject(new Error(`instance exited before listening:\n${buffer}`)));
    });

    // The race runs on the child alone, which is killed the moment fewer than 10,000 credits
    // are left: while its own top-up is at work, or before it started. Only `one` survives.
    const killed = (async () => {
      for (;;) {
        const counter = await creditCounter(one, accountId);
        if (counter && BigInt(counter.used) > 90_000_000_000n) break;
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
      child.kill('SIGKILL');
    })();
    const statuses = await Promise.all(Array.from({ length: 140 }, (_, i) => burn(url, token, accountId, i)));
    await killed;
    expect(child.signalCode ?? (await new Promise((resolve) => child.once('exit', (_code, signal) => resolve(signal))))).toBe('SIGKILL');
    expect(statuses).toContain('FAILED');

    // The survivors recover the child's postings and repair any crossing it left.
    const grants = await settledTopUps(accountId);
    expect(grants).toHaveLength(1);
    expect(grants[0]).toMatchObject({ kind: 'PREPAID', amount: 50_000_000_000n, issuedBy: 'system:auto-top-up' });
    const webhooks = await one.database.db.collection<any>('webhook_events').countDocuments({ accountId, type: 'credits.topped_up' });
    expect(webhooks).toBe(1);
  });
});
