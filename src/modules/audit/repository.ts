import { MongoBulkWriteError, ObjectId, type Collection, type Db, type Filter } from 'mongodb';
import type { CollectionIndexes } from '../../db/mongo.js';
import { formatQuantity } from '../../shared/quantity.js';
import type { AuditDoc, AuditInput } from './model.js';
import { ReplayBatch } from './replay-batch.js';

export const AUDIT = 'audit_log';

export const auditIndexes: CollectionIndexes = {
  collection: AUDIT,
  indexes: [
    { key: { accountId: 1, _id: -1 }, name: 'by_account' },
    { key: { targetType: 1, targetId: 1, _id: -1 }, name: 'by_target' },
  ],
};

/**
 * Snapshots are stored readable: quantities (bigint micro-units) become decimal strings
 * and dates stay dates, so an entry answers a dispute without knowing our storage format.
 */
export function toAuditSnapshot(value: unknown): unknown {
  if (typeof value === 'bigint') return formatQuantity(value);
  if (value === null || value === undefined) return value ?? null;
  if (value instanceof Date || value instanceof ObjectId) return value;
  if (Array.isArray(value)) return value.map(toAuditSnapshot);
  if (typeof value === 'object') {
    return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([key, inner]) => [key, toAuditSnapshot(inner)]));
  }
  return value;
}

export class AuditLog {
  readonly collection: Collection<AuditDoc>;
  private readonly replays: ReplayBatch;

  constructor(db: Db) {
    this.collection = db.collection<AuditDoc>(AUDIT);
    this.replays = new ReplayBatch(this.collection);
  }

  private toDoc(entry: AuditInput): AuditDoc {
    return {
      _id: entry.id ?? new ObjectId(),
      at: entry.at ?? new Date(),
      actor: entry.actor,
      action: entry.action,
      targetType: entry.targetType,
      targetId: entry.targetId,
      accountId: entry.accountId ?? null,
      before: toAuditSnapshot(entry.before ?? null),
      after: toAuditSnapshot(entry.after ?? null),
      requestId: entry.requestId ?? null,
    };
  }

  async record(entry: AuditInput): Promise<AuditDoc> {
    const doc = this.toDoc(entry);
    await this.collection.insertOne(doc);
    return doc;
  }

  /**
   * One round trip for many entries. With `replay: true`, entries whose (deterministic) id
   * already exists are skipped: a recovery replaying a step writes each entry once. Those
   * are grouped with other requests' of the same turn (replay-batch.ts).
   */
  async recordMany(entries: AuditInput[], options: { replay?: boolean } = {}): Promise<void> {
    if (entries.length === 0) return;
    if (options.replay) return this.replays.insert(entries.map((entry) => this.toDoc(entry)));
    try {
      await this.collection.insertMany(
        entries.map((entry) => this.toDoc(entry)),
        { ordered: false },
      );
    } catch (error) {
      if (!options.replay || !(error instanceof MongoBulkWriteError)) throw error;
      const writeErrors = Array.isArray(error.writeErrors) ? error.writeErrors : [error.writeErrors];
      if (writeErrors.some((writeError) => writeError.code !== 11000)) throw error;
    }
  }

  /** Newest first; `after` is the opaque cursor of the last entry already seen. */
  async page(options: { accountId?: string; first: number; after?: string }): Promise<{ entries: AuditDoc[]; hasNextPage: boolean }> {
    const filter: Filter<AuditDoc> = {};
    if (options.accountId !== undefined) filter.accountId = options.accountId;
    if (options.after !== undefined) filter._id = { $lt: decodeCursor(options.after) };
    const found = await this.collection
      .find(filter)
      .sort({ _id: -1 })
      .limit(options.first + 1)
      .toArray();
    return { entries: found.slice(0, options.first), hasNextPage: found.length > options.first };
  }
}

export function encodeCursor(id: ObjectId): string {
  return Buffer.from(`audit:${id.toHexString()}`).toString('base64url');
}

export function decodeCursor(cursor: string): ObjectId {
  const decoded = Buffer.from(cursor, 'base64url').toString('utf8');
  const hex = decoded.startsWith('audit:') ? decoded.slice(6) : '';
  if (!ObjectId.isValid(hex) || hex.length !== 24) throw new CursorError();
  return new ObjectId(hex);
}

export class CursorError extends Error {}
