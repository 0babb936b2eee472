/**
 * Issue 19: items asked for during one event-loop turn, by every request in flight, sent
 * as one command (`send` answers one result per item, in order). Each caller waits for
 * the command that carries its item, and sees its failure.
 */
export class TurnBatch<I, R> {
  private queued: Array<{ item: I; resolve: (result: R) => void; reject: (error: unknown) => void }> = [];

  constructor(private readonly send: (items: I[]) => Promise<R[]>) {}

  add(item: I): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      if (this.queued.length === 0) setImmediate(() => this.flush());
      this.queued.push({ item, resolve, reject });
    });
  }

  private flush(): void {
    const queued = this.queued;
    this.queued = [];
    this.send(queued.map(({ item }) => item)).then(
      (results) => {
        queued.forEach(({ resolve }, index) => {
          resolve(results[index]!);
        });
      },
      (error: unknown) => {
        for (const { reject } of queued) reject(error);
      },
    );
  }
}
