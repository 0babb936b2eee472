import type { Collection, Db } from 'mongodb';
import { isDuplicateKeyError, type CollectionIndexes } from '../../db/mongo.js';
import type { Micros } from '../../shared/quantity.js';
import type { HierarchyDoc, PendingMove, RevisionDoc } from './model.js';

export const HIERARCHY = 'account_hierarchy';
/** The revision document's id: not an account id anyone sends (a NUL leads it). */
export const REVISION = '\u0000revision';

export const hierarchyIndexes: CollectionIndexes = {
  collection: HIERARCHY,
  indexes: [{ key: { parentId: 1 }, name: 'by_parent' }],
};

/**
 * Every read and write of `account_hierarchy`: one document per placed account, plus
 * the revision document all moves go through (see service.ts for why that is safe).
 */
export class HierarchyRepository {
  private readonly accounts: Collection<HierarchyDoc>;
  private readonly revisions: Collection<RevisionDoc>;

  constructor(db: Db) {
    this.accounts = db.collection<HierarchyDoc>(HIERARCHY);
    this.revisions = db.collection<RevisionDoc>(HIERARCHY);
  }

  async revision(comment?: string): Promise<RevisionDoc> {
    return (await this.revisions.findOne({ _id: REVISION }, comment ? { comment } : {})) ?? { _id: REVISION, rev: 0, pending: null };
  }

  /** Every account that has a parent, with its parent (the membership snapshot). */
  async childParents(comment: string): Promise<Array<{ _id: string; parentId: string }>> {
    const docs = await this.accounts.find({ parentId: { $type: 'string' } }, { projection: { _id: 1, parentId: 1 }, comment }).toArray();
    return docs.map((doc) => ({ _id: doc._id, parentId: doc.parentId! }));
  }

  /** The revision and these accounts' documents in one query (they share the collection). */
  async revisionAndAccounts(ids: readonly string[]): Promise<{ revision: RevisionDoc; accounts: HierarchyDoc[] }> {
    const docs = await this.accounts.find({ _id: { $in: [REVISION, ...new Set(ids)] } }).toArray();
    const revision = (docs.find((doc) => doc._id === REVISION) as unknown as RevisionDoc | undefined) ?? {
      _id: REVISION,
      rev: 0,
      pending: null,
    };
    return { revision, accounts: docs.filter((doc) => doc._id !== REVISION) };
  }

  async accountsByIds(ids: readonly string[]): Promise<HierarchyDoc[]> {
    if (ids.length === 0) return [];
    return this.accounts.find({ _id: { $in: [...new Set(ids)] } }).toArray();
  }

  async childrenOf(parentIds: readonly string[]): Promise<Array<Pick<HierarchyDoc, '_id' | 'parentId'>>> {
    if (parentIds.length === 0) return [];
    return this.accounts.find({ parentId: { $in: [...parentIds] } }, { projection: { _id: 1, parentId: 1 } }).toArray();
  }

  /**
   * The decision of a move: the revision moves from `seen` (with nothing pending) to
   * `seen + 1` carrying the move. False when another move or limit got there first.
   */
  async claim(seen: number, move: PendingMove): Promise<boolean> {
    if (seen === 0) {
      try {
        await this.revisions.insertOne({ _id: REVISION, rev: 1, pending: move });
        return true;
      } catch (error) {
        if (isDuplicateKeyError(error)) return false;
        throw error;
      }
    }
    const claimed = await this.revisions.updateOne({ _id: REVISION, rev: seen, pending: null }, { $set: { rev: seen + 1, pending: move } });
    return claimed.modifiedCount === 1;
  }

  /** Writes a decided move onto the account (idempotent), then clears it from the revision. */
  async apply(move: PendingMove): Promise<void> {
    await this.accounts.updateOne(
      { _id: move.accountId },
      { $set: { parentId: move.parentId, movedAt: move.rev, updatedAt: move.at }, $setOnInsert: { limits: {} } },
      { upsert: true },
    );
  }

  async clearPending(rev: number): Promise<void> {
    await this.revisions.updateOne({ _id: REVISION, rev }, { $set: { pending: null } });
  }

  /** Sets or removes one cap; returns the document before. */
  async setLimit(accountId: string, feature: string, limit: Micros | null, at: Date): Promise<HierarchyDoc | null> {
    const update: Record<string, unknown> =
      limit === null
        ? { $unset: { [`limits.${feature}`]: '' as const }, $set: { updatedAt: at }, $setOnInsert: { parentId: null, movedAt: 0 } }
        : { $set: { [`limits.${feature}`]: limit, updatedAt: at }, $setOnInsert: { parentId: null, movedAt: 0 } };
    return this.accounts.findOneAndUpdate({ _id: accountId }, update as never, { upsert: true, returnDocument: 'before' });
  }

  /** Bumps the revision without a move (a limit changed): caches keyed by it refresh. Returns the new revision. */
  async bump(): Promise<number> {
    const after = await this.revisions.findOneAndUpdate(
      { _id: REVISION },
      { $inc: { rev: 1 }, $setOnInsert: { pending: null } },
      { upsert: true, returnDocument: 'after' },
    );
    return after?.rev ?? 0;
  }
}
