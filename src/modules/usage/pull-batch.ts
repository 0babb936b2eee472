/**
 * Issue 19: the pending pulls (§6 step 5, housekeeping) of every posting settled during one
 * event-loop turn go out as one `bulkWrite`, not one `update` each. A pull only removes an
 * entry whose posting is already POSTED; it is idempotent, and one that is lost (a crash, a
 * failed write) is done by the sweeper a lease later, as before. Grouping changes when the
 * pulls are sent, not what they do.
 */
export interface PendingPull {
  counterId: string;
  entryId: string;
}

export class PullBatch {
  private queued: Array<{ pull: PendingPull; done: (error?: unknown) => void }> = [];

  constructor(private readonly send: (pulls: PendingPull[]) => Promise<void>) {}

  /** Resolves once the turn's bulkWrite that carries this pull is acknowledged. */
  pull(pull: PendingPull): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (this.queued.length === 0) setImmediate(() => this.flush());
      this.queued.push({ pull, done: (error) => (error === undefined ? resolve() : reject(error)) });
    });
  }

  private flush(): void {
    const queued = this.queued;
    this.queued = [];
    this.send(queued.map(({ pull }) => pull)).then(
      () => {
        for (const { done } of queued) done();
      },
      (error: unknown) => {
        for (const { done } of queued) done(error ?? new Error('pulling pending entries failed'));
      },
    );
  }
}
