import { describe, expect, it } from 'vitest';
import { startPeriodic } from './periodic.js';

describe('startPeriodic', () => {
  it('never overlaps a pass with itself, reports failures, and stop waits for the running pass', async () => {
    let running = 0;
    let maxRunning = 0;
    let passes = 0;
    const errors: unknown[] = [];
    const periodic = startPeriodic(
      async () => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        passes++;
        await new Promise((resolve) => setTimeout(resolve, 30));
        running--;
        if (passes === 1) throw new Error('first pass fails');
      },
      5,
      (error) => errors.push(error),
    );
    await new Promise((resolve) => setTimeout(resolve, 120));
    await periodic.stop();
    const stoppedAt = passes;
    expect(running).toBe(0);
    expect(maxRunning).toBe(1);
    expect(passes).toBeGreaterThanOrEqual(2);
    expect(errors).toHaveLength(1);
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(passes).toBe(stoppedAt);
  });
});
