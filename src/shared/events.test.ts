import { describe, expect, it } from 'vitest';
import { EventBus } from './events.js';

interface TestEvents {
  CounterChanged: { counterId: string };
  TermsChanged: { accountId: string };
}

describe('EventBus', () => {
  it('delivers to every handler in subscription order and waits for each', async () => {
    const bus = new EventBus<TestEvents>();
    const seen: string[] = [];
    bus.on('CounterChanged', async ({ counterId }) => {
      await new Promise((resolve) => setTimeout(resolve, 5));
      seen.push(`first ${counterId}`);
    });
    bus.on('CounterChanged', ({ counterId }) => {
      seen.push(`second ${counterId}`);
    });
    bus.on('TermsChanged', () => {
      seen.push('terms');
    });
    await bus.publish('CounterChanged', { counterId: 'c1' });
    expect(seen).toEqual(['first c1', 'second c1']);
  });

  it("rejects the publisher with a handler's error, so an exactly-once point can be retried", async () => {
    const bus = new EventBus<TestEvents>();
    let later = false;
    bus.on('CounterChanged', () => {
      throw new Error('alert store down');
    });
    bus.on('CounterChanged', () => {
      later = true;
    });
    await expect(bus.publish('CounterChanged', { counterId: 'c1' })).rejects.toThrow('alert store down');
    expect(later).toBe(false);
  });

  it('stops delivering to a handler once unregistered, and publishing with no handler is a no-op', async () => {
    const bus = new EventBus<TestEvents>();
    let calls = 0;
    const off = bus.on('TermsChanged', () => {
      calls++;
    });
    await bus.publish('TermsChanged', { accountId: 'a' });
    off();
    await bus.publish('TermsChanged', { accountId: 'a' });
    await bus.publish('CounterChanged', { counterId: 'c' });
    expect(calls).toBe(1);
  });
});
