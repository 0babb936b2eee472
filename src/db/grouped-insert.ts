import { MongoBulkWriteError, type Collection, type Document, type OptionalUnlessRequiredId } from 'mongodb';

/**
 * About a quarter of a 1,000-event batch: measured on the stand-in (docs/performance.md),
 * four concurrent commands overlap the driver's encoding with the database's work.
 */
const DEFAULT_CHUNK_SIZE = 250;

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

  constructor(
    private readonly collection: Collection<T>,
    /** Documents per command: a flush larger than this is sent as concurrent commands. */
    private readonly chunkSize = DEFAULT_CHUNK_SIZE,
  ) {}

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
    const owners = waiters.flatMap(({ count }, caller) => Array.from({ length: count }, (_, offset) => [caller, offset] as const));
    const collided = waiters.map(() => new Set<number>());
    /** The error that concerns each failed caller. */
    const failed = new Map<number, unknown>();
    // A large group (a recordUsageBatch) goes out as a few commands at once: the driver
    // encodes the next chunk while the database stores the previous one. Every chunk is
    // unordered, as the single insertMany was, so any subset may be written either way.
    const chunks: Array<{ from: number; docs: typeof docs }> = [];
    for (let from = 0; from < docs.length; from += this.chunkSize) chunks.push({ from, docs: docs.slice(from, from + this.chunkSize) });
    const outcomes = await Promise.allSettled(chunks.map((chunk) => this.collection.insertMany(chunk.docs, { ordered: false })));
    let unattributable: unknown;
    outcomes.forEach((outcome, chunk) => {
      if (outcome.status === 'fulfilled') return;
      const error = outcome.reason;
      if (!(error instanceof MongoBulkWriteError)) {
        unattributable ??= error;
        return;
      }
      const writeErrors = Array.isArray(error.writeErrors) ? error.writeErrors : [error.writeErrors];
      for (const writeError of writeErrors) {
        const owner = owners[chunks[chunk]!.from + writeError.index];
        if (!owner) unattributable ??= error;
        else if (writeError.code === 11000) collided[owner[0]]!.add(owner[1]);
        else failed.set(owner[0], error);
      }
    });
    waiters.forEach(({ resolve, reject }, caller) => {
      if (unattributable !== undefined) reject(unattributable);
      else if (failed.has(caller)) reject(failed.get(caller));
      else resolve(collided[caller]!);
    });
  }
}
