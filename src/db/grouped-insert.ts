import { MongoBulkWriteError, type Collection, type Document, type OptionalUnlessRequiredId } from 'mongodb';

interface Waiter {
  count: number;
  resolve: (collided: Set<number>) => void;
  reject: (error: unknown) => void;
}

/**
 * Issue 19: the inserts into one collection asked for during one event-loop turn, by every
 * request in flight, go out as one `insertMany(ordered: false)` instead of one command each
 * (on a small machine a command's socket write is most of its cost). Each caller gets back
 * the positions of its own documents that hit a unique index (code 11000), and resolves
 * only once the write that carries them is acknowledged; any other error fails the callers
 * whose documents it concerns (all of them if it cannot be attributed). With `ordered:
 * false` every other document is written either way, exactly as when each caller sent its
 * own insertMany: grouping changes when the documents are sent, not what is written.
 */
export class GroupedInsert<T extends Document> {
  private docs: Array<OptionalUnlessRequiredId<T>> = [];
  private waiters: Waiter[] = [];

  constructor(private readonly collection: Collection<T>) {}

  /** Positions (in `docs`) that collided on a unique index. */
  insert(docs: ReadonlyArray<OptionalUnlessRequiredId<T>>): Promise<Set<number>> {
    if (docs.length === 0) return Promise.resolve(new Set());
    return new Promise<Set<number>>((resolve, reject) => {
      if (this.waiters.length === 0) setImmediate(() => void this.flush());
      this.docs.push(...docs);
      this.waiters.push({ count: docs.length, resolve, reject });
    });
  }

  private async flush(): Promise<void> {
    const { docs, waiters } = this;
    this.docs = [];
    this.waiters = [];
    const collided = waiters.map(() => new Set<number>());
    const failed = new Set<number>();
    try {
      await this.collection.insertMany(docs, { ordered: false });
    } catch (error) {
      if (!(error instanceof MongoBulkWriteError)) {
        for (const { reject } of waiters) reject(error);
        return;
      }
      const owners = waiters.flatMap(({ count }, caller) => Array.from({ length: count }, (_, offset) => [caller, offset] as const));
      const writeErrors = Array.isArray(error.writeErrors) ? error.writeErrors : [error.writeErrors];
      for (const writeError of writeErrors) {
        const owner = owners[writeError.index];
        if (!owner) {
          for (const { reject } of waiters) reject(error);
          return;
        }
        if (writeError.code === 11000) collided[owner[0]]!.add(owner[1]);
        else failed.add(owner[0]);
      }
      waiters.forEach(({ resolve, reject }, caller) => {
        if (failed.has(caller)) reject(error);
        else resolve(collided[caller]!);
      });
      return;
    }
    waiters.forEach(({ resolve }, caller) => {
      resolve(collided[caller]!);
    });
  }
}
