/**
 * A background pass run every `intervalMs`, never overlapping itself: a tick that finds the
 * previous pass still running is skipped. A failed pass is reported and the next tick tries
 * again. The timer does not keep the process alive; `stop()` waits for a running pass.
 */
export interface Periodic {
  stop(): Promise<void>;
}

export function startPeriodic(pass: () => Promise<unknown>, intervalMs: number, onError: (error: unknown) => void): Periodic {
  let running: Promise<void> | undefined;
  const timer = setInterval(() => {
    running ??= pass()
      .then(
        () => undefined,
        (error: unknown) => onError(error),
      )
      .finally(() => {
        running = undefined;
      });
  }, intervalMs);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
