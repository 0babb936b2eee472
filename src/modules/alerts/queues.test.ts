import { describe, expect, it, vi } from 'vitest';
import { createLogger } from '../../logger.js';
import { LiveHub } from './hub.js';
import type { AlertDoc } from './model.js';
import { AlertQueue, LatestValueQueue } from './queues.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('AlertQueue', () => {
  it('hands alerts to a waiting reader and buffers the rest in order', async () => {
    const queue = new AlertQueue<number>(10);
    const pending = queue.next();
    queue.push(1);
    queue.push(2);
    queue.push(3);
    expect(await pending).toEqual({ done: false, value: { kind: 'alert', alert: 1 } });
    expect((await queue.next()).value).toEqual({ kind: 'alert', alert: 2 });
    expect((await queue.next()).value).toEqual({ kind: 'alert', alert: 3 });
  });

  it('ends a reader that falls behind by more than the bound: one overflow item, then done', async () => {
    const queue = new AlertQueue<number>(3);
    const release = vi.fn();
    queue.onRelease(release);
    for (let n = 0; n < 10; n++) queue.push(n);
    expect(release).toHaveBeenCalledTimes(1);
    expect(queue.size).toBe(0);
    expect(await queue.next()).toEqual({ done: false, value: { kind: 'overflow', bound: 3 } });
    expect(await queue.next()).toEqual({ done: true, value: undefined });
  });

  it('releases its listener once and wakes a waiting reader on return()', async () => {
    const queue = new AlertQueue<number>(3);
    const release = vi.fn();
    queue.onRelease(release);
    const pending = queue.next();
    await queue.return();
    await queue.return();
    expect(await pending).toEqual({ done: true, value: undefined });
    expect(release).toHaveBeenCalledTimes(1);
    queue.push(1);
    expect(await queue.next()).toEqual({ done: true, value: undefined });
  });
});

describe('LatestValueQueue', () => {
  it('coalesces a burst to its last state per key, paced to the interval', async () => {
    const queue = new LatestValueQueue<number>(50);
    const started = performance.now();
    queue.offer('a', 1);
    expect((await queue.next()).value).toBe(1); // first one immediately
    for (let n = 2; n <= 100; n++) queue.offer('a', n);
    expect(queue.size).toBe(1);
    expect((await queue.next()).value).toBe(100); // the trailing state, one interval later
    expect(performance.now() - started).toBeGreaterThanOrEqual(45);
  });

  it('serves the key that has waited longest first', async () => {
    const queue = new LatestValueQueue<string>(0);
    queue.offer('a', 'a1');
    queue.offer('b', 'b1');
    queue.offer('a', 'a2');
    expect((await queue.next()).value).toBe('b1');
    expect((await queue.next()).value).toBe('a2');
  });

  it('never emits more than once per interval under a steady stream', async () => {
    const queue = new LatestValueQueue<number>(40);
    const emittedAt: number[] = [];
    const reader = (async () => {
      for await (const _value of queue) emittedAt.push(performance.now());
    })();
    const started = performance.now();
    for (let n = 0; n < 50; n++) {
      queue.offer('k', n);
      await sleep(4);
    }
    await sleep(60);
    const elapsed = performance.now() - started;
    await queue.return();
    await reader;
    // Emissions are >= 40 ms apart within the run, however the reader's wake-ups jitter.
    expect(emittedAt.length).toBeLessThanOrEqual(Math.floor(elapsed / 40) + 1);
  });
});

describe('LiveHub', () => {
  const alert = (accountId: string, feature: string, threshold: number) => ({ accountId, feature, threshold }) as AlertDoc;

  it('dispatches by account and feature, and counts listeners until they are released', async () => {
    const hub = new LiveHub<string>({ logger: createLogger('silent'), loadBalance: async () => null });
    const all = hub.subscribeAlerts('acct_1', null);
    const onlyExports = hub.subscribeAlerts('acct_1', ['bulk_export']);
    expect(hub.listenerCounts().alerts).toBe(2);
    hub.dispatchAlerts([alert('acct_1', 'api_calls', 80), alert('acct_2', 'api_calls', 80), alert('acct_1', 'bulk_export', 90)]);
    expect(all.size).toBe(2);
    expect(onlyExports.size).toBe(1);
    await all.return();
    await onlyExports.return();
    expect(hub.listenerCounts().alerts).toBe(0);
  });

  it('recomputes a balance once per burst and shares it with every subscriber of that key', async () => {
    const loads = new Map<string, number>();
    const hub = new LiveHub<string>({
      logger: createLogger('silent'),
      balanceIntervalMs: 30,
      loadBalance: async (_accountId, feature) => {
        loads.set(feature, (loads.get(feature) ?? 0) + 1);
        await sleep(5);
        return `${feature}#${loads.get(feature)}`;
      },
    });
    const first = hub.subscribeBalances('acct_1', ['api_calls']);
    const second = hub.subscribeBalances('acct_1', null);
    for (let n = 0; n < 20; n++) hub.balanceChanged('acct_1', 'api_calls');
    hub.balanceChanged('acct_1', 'other_feature'); // only `second` listens to it
    await sleep(120);
    // One run for the burst's first change and one trailing run for the rest.
    expect(Object.fromEntries(loads)).toEqual({ api_calls: 2, other_feature: 1 });
    // The first result was overtaken while waiting: only the trailing state is delivered.
    expect((await first.next()).value).toMatchObject({ feature: 'api_calls', entitlement: 'api_calls#2' });
    expect(second.size).toBe(2);
    await first.return();
    await second.return();
    await sleep(50);
    expect(hub.listenerCounts()).toEqual({ alerts: 0, balances: 0, balanceChannels: 0 });
    hub.stop();
  });
});

describe('what the server relies on to read the queues lean (src/server/live-stream.ts)', () => {
  it('marks both queues, and both settle a pending read with the end at return()', async () => {
    const mark = Symbol.for('allotment.settlesPendingReadOnReturn');
    const alerts = new AlertQueue<number>(10);
    const balances = new LatestValueQueue<number>(10);
    expect((alerts as unknown as Record<symbol, unknown>)[mark]).toBe(true);
    expect((balances as unknown as Record<symbol, unknown>)[mark]).toBe(true);
    const waitingAlert = alerts.next();
    const waitingBalance = balances.next();
    void alerts.return();
    void balances.return();
    expect(await waitingAlert).toEqual({ done: true, value: undefined });
    expect(await waitingBalance).toEqual({ done: true, value: undefined });
  });
});
