import { isDeepStrictEqual } from 'node:util';
/**
 * Live balances (`entitlementUpdated`): the entitlement recomputed after each change on any
 * instance, coalesced to about 10 updates a second per subscription, the last state always
 * delivered.
 */
import type { Client } from 'graphql-ws';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { signToken, startTestInstance, uniqueDbName, type TestInstance } from '../support/harness.js';
import { gql } from '../support/fixtures.js';
import { alertingAccount, defineMeteredFeature, SET_INCLUDED, use } from './fixtures.js';
import { collect, liveClient, settle, waitFor, type Collected } from './live-client.js';

const ENTITLEMENT_UPDATED = /* GraphQL */ `
  subscription Balances($accountId: ID!, $features: [ID!]) {
    entitlementUpdated(accountId: $accountId, features: $features) {
      accountId
      entitlement { feature { key } used capacity remaining percentUsed }
    }
  }
`;

let a: TestInstance;
let b: TestInstance;
let token: string;
const clients: Client[] = [];

beforeAll(async () => {
  const dbName = uniqueDbName('balances');
  a = await startTestInstance({ dbName });
  b = await startTestInstance({ dbName });
  await defineMeteredFeature(a);
  token = await signToken({ scope: 'entitlements:read' });
});
afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.dispose()));
  await waitFor(() => balanceListeners(a) + balanceListeners(b) === 0, 10_000, 'listeners released');
});
afterAll(async () => {
  await a?.stop();
  await b?.stop();
});

const balanceListeners = (instance: TestInstance) => instance.services.live.hub.listenerCounts().balances;

async function subscribe(instance: TestInstance, accountId: string, options: { token?: string; features?: string[] } = {}) {
  const client = liveClient(instance.wsUrl, options.token ?? token);
  clients.push(client);
  const before = balanceListeners(instance);
  const updates = collect<any>(client, ENTITLEMENT_UPDATED, { accountId, features: options.features }, 'entitlementUpdated');
  await waitFor(() => balanceListeners(instance) === before + 1, 10_000, 'subscription registered');
  return updates;
}

/** Arrival times, to check the pace. */
function stamp(updates: Collected<any>): number[] {
  const times: number[] = [];
  const push = updates.events.push.bind(updates.events);
  updates.events.push = (...items: any[]) => {
    times.push(performance.now());
    return push(...items);
  };
  return times;
}

describe('entitlementUpdated', () => {
  it('pushes the balance after a change, on the instance that counted it and on the other', async () => {
    const account = await alertingAccount(a);
    const onA = await subscribe(a, account.accountId);
    const onB = await subscribe(b, account.accountId, { features: ['api_calls'] });
    await use(a, account, '42.5');
    const expected = {
      accountId: account.accountId,
      entitlement: { feature: { key: 'api_calls' }, used: '42.5', capacity: '100', remaining: '57.5', percentUsed: 42.5 },
    };
    // A terms-change update from the set-up may still be on its way to B; what must hold is
    // that the state after the usage arrives on both, and stays the last one delivered.
    await waitFor(
      () => isDeepStrictEqual(onA.events.at(-1), expected) && isDeepStrictEqual(onB.events.at(-1), expected),
      3_000,
      'the balance after the usage on both instances',
    );
    expect(onA.events.at(-1)).toEqual(expected);
    expect(onB.events.at(-1)).toEqual(expected);
  });

  it('pushes the balance after a contract change, with no usage at all', async () => {
    const account = await alertingAccount(a);
    await use(a, account, '30');
    const updates = await subscribe(b, account.accountId);
    await gql(a, SET_INCLUDED, { contractId: account.contractId, input: { feature: 'api_calls', included: '60' } });
    await waitFor(() => updates.events.some((update) => update.entitlement.capacity === '60'), 10_000, 'the new capacity');
    expect(updates.events.at(-1).entitlement).toMatchObject({ used: '30', capacity: '60', remaining: '30', percentUsed: 50 });
  });

  it('coalesces a burst to about 10 updates a second and always ends with the final state', async () => {
    const account = await alertingAccount(a);
    const updates = await subscribe(b, account.accountId);
    const arrivals = stamp(updates);
    const started = performance.now();
    // 40 changes from both instances at once.
    await Promise.all(Array.from({ length: 40 }, (_, i) => use(i % 2 ? a : b, account, '1')));
    await waitFor(() => updates.events.at(-1)?.entitlement.used === '40', 10_000, 'the final state');
    await settle(400);

    expect(updates.events.at(-1).entitlement.used).toBe('40');
    // Every update was emitted between the start of the burst and its own arrival, at least
    // 100 ms after the previous one: that caps the count however fast the changes came.
    // (Arrival gaps alone prove little: a busy event loop bunches deliveries.)
    const window = arrivals.at(-1)! - started;
    expect(updates.events.length).toBeLessThanOrEqual(Math.floor(window / 100) + 1);
  });

  it('refuses a customer token another account, and releases listeners when the socket closes', async () => {
    const account = await alertingAccount(a);
    const customer = await signToken({ scope: 'entitlements:read', account_id: 'acct_elsewhere' });
    const client = liveClient(a.wsUrl, customer);
    clients.push(client);
    const refused = collect<any>(client, ENTITLEMENT_UPDATED, { accountId: account.accountId }, 'entitlementUpdated');
    await waitFor(() => refused.errorPayloads.length > 0, 10_000, 'refusal');
    expect(refused.errorPayloads[0]?.errors[0]?.extensions?.code).toBe('FORBIDDEN');

    await subscribe(a, account.accountId);
    await subscribe(a, account.accountId, { features: ['api_calls'] });
    expect(balanceListeners(a)).toBe(2);
    await Promise.all(clients.splice(0).map((socket) => socket.dispose()));
    await waitFor(() => balanceListeners(a) === 0, 10_000, 'listeners released');
  });
});
