import type { Collection } from 'mongodb';
import { GroupedInsert } from '../../db/grouped-insert.js';
import type { AuditDoc } from './model.js';

/**
 * Issue 19: the replayable audit entries (deterministic ids, `recordMany(…, { replay: true })`)
 * written during one event-loop turn, by every request in flight, go out as one
 * `insertMany(ordered: false)` (src/db/grouped-insert.ts). Each caller resolves once its own
 * entries are acknowledged or already existed (code 11000: a replay), and fails if any of
 * its own entries failed otherwise. A crash before the write is acknowledged leaves the
 * callers' postings unsettled, as one insert per caller did, and their recovery writes the
 * entries again (idempotent by id).
 */
export class ReplayBatch {
  private readonly grouped: GroupedInsert<AuditDoc>;

  constructor(collection: Collection<AuditDoc>) {
    this.grouped = new GroupedInsert(collection);
  }

  async insert(docs: AuditDoc[]): Promise<void> {
    await this.grouped.insert(docs);
  }
}
