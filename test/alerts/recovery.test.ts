/**
 * R9 through crashes: the ingestion path is killed right after one of its writes (usage's
 * fault injection) and recovered by a retry or by the sweeper. The alert of the crossing
 * must then exist once and reach the subscriber once, whichever side of the alert write
 * the crash fell on. Leases last one second so recovery is quick.
 */
import type { Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WritePoint } from '../../src/modules/usage/faults.js';
import { errorCode } from '../support/fixtures.js';
import { signToken, startTestInstance, type TestInstance } from '../support/harness.js';
import { alertingAccount, defineMeteredFeature, FEATURE } from './fixtures.js';
import { collect, liveClient, settle, USAGE_ALERTS, waitFor } from './live-client.js';

let crashing: TestInstance;
let survivor: TestInstance;
let client: Client;
beforeAll(async () => {
  const env = { USAGE_LEASE_SECONDS: '1' };
  crashing = await startTestInstance({ env });
  survivor = await startTestInstance({ dbName: crashing.dbName, env });
  await defineMeteredFeature(crashing);
  client = liveClient(survivor.wsUrl, await signToken({ scope: 'entitlements:read' }));
});
afterAll(async () => {
  await client?.dispose();
  await survivor?.stop();
  await crashing?.stop();
});

const RECORD = `mutation ($input: UsageEventInput!) { recordUsage(input: $input) { status } }`;

/** Before the alert is written (`counter.updated`) and after it (the later writes). */
const CRASH_POINTS: WritePoint[] = ['counter.updated', 'audit.written', 'posting.posted', 'pending.pulled'];

describe('a crash while usage crosses a threshold', () => {
  it.each(['retry', 'sweeper'] as const)('is recovered by the %s with the alert stored and pushed exactly once', async (recovery) => {
    await Promise.all(
      CRASH_POINTS.map(async (point) => {
        const account = await alertingAccount(crashing);
        const before = survivor.services.live.hub.listenerCounts().alerts;
        const alerts = collect<any>(client, USAGE_ALERTS, { accountId: account.accountId }, 'usageAlerts');
        await waitFor(() => survivor.services.live.hub.listenerCounts().alerts > before, 10_000, 'subscription registered');

        const input = {
          accountId: account.accountId,
          feature: FEATURE,
          quantity: '85',
          idempotencyKey: `crash-${point.replace('.', '-')}`,
        };
        crashing.services.usage.faults.arm(point, { accountId: account.accountId });
        const crashed = await crashing.graphql<{ recordUsage: { status: string } }>(RECORD, { input });
        // The pending entry is pulled after the response, so that crash leaves the client served.
        if (point === 'pending.pulled') expect(crashed.data?.recordUsage.status, point).toBe('ACCEPTED');
        else expect(errorCode(crashed), point).toBe('INTERNAL_SERVER_ERROR');

        if (recovery === 'retry') {
          const retried = await survivor.graphql<{ recordUsage: { status: string } }>(RECORD, { input });
          expect(retried.data?.recordUsage.status, point).toBe('DUPLICATE');
        }
        await waitFor(() => alerts.events.length >= 1, 8_000, `the alert after a crash at ${point}`);
        await settle(500);

        expect(
          alerts.events.map((alert) => [alert.threshold, alert.used]),
          point,
        ).toEqual([[80, '85']]);
        const stored = await crashing.database.db.collection('usage_alerts').countDocuments({ accountId: account.accountId });
        expect(stored, point).toBe(1);
      }),
    );
  });
});
