import type DataLoader from 'dataloader';
import { coalescedReader, loadAll } from '../../db/coalesce.js';
import type { Logger } from '../../logger.js';
import { BadInputError } from '../../shared/errors.js';
import type { EventPublisher } from '../../shared/events.js';
import { Lru } from '../../shared/lru.js';
import type { Micros } from '../../shared/quantity.js';
import { replayableId } from './ids.js';
import { MembershipSnapshot } from './membership.js';
import type { Actor, AuditLog } from '../audit/index.js';
import { type HierarchyDoc, type HierarchyEvents, type Lineage, MAX_DEPTH, type PendingMove, type RevisionDoc } from './model.js';
import type { HierarchyRepository } from './repository.js';

const MOVE_ATTEMPTS = 50;

/**
 * Account hierarchies (R13): one parent per account, at most MAX_DEPTH accounts from a
 * root to a leaf, never a cycle, also under concurrent moves on several instances.
 *
 * Why concurrent moves cannot make a cycle (docs/hierarchies.md): every move is validated
 * against the hierarchy as of revision n (nothing pending) and then decided by one
 * compare-and-set of the revision document from n to n+1. Two moves validated against
 * the same n cannot both win; the loser re-reads, finds the winner's move, and validates
 * again. So moves are serialisable, and a move that is valid on the state it was decided
 * on keeps the forest acyclic and shallow. The winner parks its move in the revision
 * document (`pending`) before writing the account's document; a crash in between leaves
 * the move decided but unapplied: readers lay it over what they read, and the next move
 * applies it (with its audit entry, under a deterministic id) before deciding its own.
 *
 * Reads on the check path (`lineage`) are cached per process, keyed by the revision.
 * While the membership snapshot's last poll of the revision (every 100 ms) is recent and
 * matches the cache's, cached lineages are answered without any read (the terms cache,
 * docs/performance.md); otherwise each lookup reads the revision with the accounts'
 * documents and reuses the deeper levels while it is unchanged. Limits bump the revision too.
 */
export class HierarchyService {
  private cachedRev = -1;
  private cachedPending: PendingMove | null = null;
  private readonly lineages: Lru<string, Lineage>;
  /** No lineage cached under an older revision is answered without a read: this instance wrote it. */
  private floorRev = 0;
  private readonly maxStalenessMs: number;
  private readonly descendants: Lru<string, string[]>;
  /** Requests in one event-loop turn share one read, sent after they all asked (read-your-writes). */
  private readonly revisionReader: DataLoader<string, RevisionDoc, string>;
  /** The revision with each account's own document, in one query per event-loop turn. */
  private readonly firstLevel: DataLoader<string, { revision: RevisionDoc; doc: HierarchyDoc | null }, string>;

  /** Accounts that have a parent, refreshed in the background (see membership.ts). */
  readonly membership: MembershipSnapshot;

  constructor(
    private readonly deps: {
      repository: HierarchyRepository;
      audit: AuditLog;
      events: EventPublisher<HierarchyEvents>;
      logger: Logger;
      /** The lineage cache: accounts kept (LRU) and the staleness bound; 0 turns the no-read path off. */
      cache?: { maxEntries: number; maxStalenessMs: number };
    },
  ) {
    // Exact per-revision reuse stays on (bounded) when the no-read path is off.
    this.lineages = new Lru(deps.cache?.maxEntries || 10_000);
    this.descendants = new Lru(deps.cache?.maxEntries || 10_000);
    this.maxStalenessMs = deps.cache?.maxEntries === 0 ? 0 : (deps.cache?.maxStalenessMs ?? 0);
    this.membership = new MembershipSnapshot(deps.repository, deps.logger);
    this.revisionReader = coalescedReader(async (keys) => {
      const revision = await deps.repository.revision();
      return keys.map(() => revision);
    });
    this.firstLevel = coalescedReader(async (ids) => {
      const { revision, accounts } = await deps.repository.revisionAndAccounts(ids);
      const byId = new Map(accounts.map((doc) => [doc._id, doc]));
      return ids.map((id) => ({ revision, doc: byId.get(id) ?? null }));
    });
  }

  /** setAccountParent: moves `accountId` under `parentId` (null detaches). */
  async setParent(accountId: string, parentId: string | null, by: Actor): Promise<void> {
    if (parentId === accountId) {
      throw new BadInputError(`Account "${accountId}" cannot be its own parent.`, { field: 'parentId' });
    }
    const { repository } = this.deps;
    for (let attempt = 0; attempt < MOVE_ATTEMPTS; attempt++) {
      const revision = await this.settledRevision();
      const [current] = await repository.accountsByIds([accountId]);
      const previousParentId = current?.parentId ?? null;
      if (previousParentId === parentId) {
        // Nothing moves, but the request is audited like any mutation (R10).
        await this.deps.audit.record({
          actor: by.actor,
          requestId: by.requestId,
          action: 'account.parent_unchanged',
          targetType: 'Account',
          targetId: accountId,
          accountId,
          before: { parentId },
          after: { parentId },
        });
        return;
      }
      if (parentId !== null) await this.assertPlaceable(accountId, parentId);
      const move: PendingMove = {
        rev: revision.rev + 1,
        accountId,
        parentId,
        previousParentId,
        actor: by.actor,
        requestId: by.requestId,
        at: new Date(),
      };
      if (!(await repository.claim(revision.rev, move))) continue;
      await this.finish(move);
      // This instance sees its own move at once; others within the snapshot's interval.
      await this.membership.refresh();
      return;
    }
    throw new Error(`setAccountParent on "${accountId}" kept racing with concurrent moves`);
  }

  /**
   * Whether an account may draw from a pool and so needs its lineage read: always when
   * it has no contract (nothing else can entitle it), else when it had a parent as of the
   * membership snapshot (which fails closed; see membership.ts).
   */
  mayDraw(accountId: string, hasContracts: boolean): boolean {
    return !hasContracts || this.membership.has(accountId);
  }

  /** A guess at the account's ancestors, from the membership snapshot (no read; see membership.ts). */
  likelyAncestors(accountId: string): string[] {
    return this.membership.likelyAncestors(accountId);
  }

  /** setAccountLimit: caps (or, with null, uncaps) one member's draw from its pool per period. */
  async setLimit(accountId: string, feature: string, limit: Micros | null, by: Actor): Promise<void> {
    const at = new Date();
    let rev: number | undefined;
    let before: HierarchyDoc | null;
    try {
      before = await this.deps.repository.setLimit(accountId, feature, limit, at);
      rev = await this.deps.repository.bump();
    } finally {
      // Answered from the cache again only once a read shows the bumped revision (or a later one).
      this.floorRev = Math.max(this.floorRev, rev ?? this.cachedRev + 1);
    }
    await this.recordLimit(accountId, feature, limit, before, at, by);
  }

  private async recordLimit(accountId: string, feature: string, limit: Micros | null, before: HierarchyDoc | null, at: Date, by: Actor) {
    await this.deps.audit.record({
      actor: by.actor,
      requestId: by.requestId,
      action: 'account.limit_set',
      targetType: 'Account',
      targetId: accountId,
      accountId,
      before: { feature, limit: before?.limits?.[feature] ?? null },
      after: { feature, limit },
      at,
    });
  }

  async parentOf(accountId: string): Promise<string | null> {
    return (await this.lineage([accountId], { fresh: true })).get(accountId)!.ancestors[0] ?? null;
  }

  async childrenOf(accountId: string): Promise<string[]> {
    const revision = await this.revision();
    const rows = await this.deps.repository.childrenOf([accountId]);
    const children = new Set(rows.map((row) => row._id));
    const pending = revision.pending;
    if (pending && pending.parentId === accountId) children.add(pending.accountId);
    if (pending && pending.parentId !== accountId) children.delete(pending.accountId);
    return [...children].sort();
  }

  /** Every account below `accountId` (at most MAX_DEPTH - 1 levels), parents before children. */
  async descendantsOf(accountId: string): Promise<string[]> {
    if (this.fastPathOpen()) {
      const known = this.descendants.get(accountId);
      if (known) return known;
    }
    const revision = await this.current();
    const cached = this.descendants.get(accountId);
    if (cached) return cached;
    const found: string[] = [];
    let level = [accountId];
    for (let depth = 1; depth < MAX_DEPTH && level.length > 0; depth++) {
      const next = (await Promise.all(level.map((id) => this.childrenOf(id)))).flat();
      found.push(...next);
      level = next;
    }
    if (this.cachedRev === revision.rev) this.descendants.set(accountId, found);
    return found;
  }

  /**
   * Ancestors (nearest first) and caps of each account, as of the current revision. The
   * revision and the accounts' own documents come in one query (shared by every request
   * of the event-loop turn); a root needs nothing more. Deeper levels are cached per
   * revision, so a member's chain costs no further read until the hierarchy changes.
   */
  async lineage(accountIds: readonly string[], options: { fresh?: boolean } = {}): Promise<Map<string, Lineage>> {
    const ids = [...new Set(accountIds)];
    const cached = options.fresh ? undefined : this.cachedLineages(ids);
    if (cached) return cached;
    const first = await loadAll(this.firstLevel, ids);
    const result = new Map<string, Lineage>();
    const deeper = new Map<RevisionDoc, Map<string, HierarchyDoc | null>>();
    first.forEach(({ revision, doc }, i) => {
      const id = ids[i]!;
      this.sync(revision);
      const cached = this.cachedRev === revision.rev ? this.lineages.get(id) : undefined;
      const parentId = revision.pending?.accountId === id ? revision.pending.parentId : (doc?.parentId ?? null);
      if (cached) result.set(id, cached);
      else if (parentId === null) {
        const root = { ancestors: [], limits: doc?.limits ?? {} };
        result.set(id, root);
        this.lineages.set(id, root); // under the revision just synced
      } else {
        let known = deeper.get(revision);
        if (!known) {
          known = new Map();
          deeper.set(revision, known);
        }
        known.set(id, doc);
      }
    });
    for (const [revision, known] of deeper) {
      const found = await this.readLineages([...known.keys()], revision.pending, known);
      for (const [id, lineage] of found) {
        result.set(id, lineage);
        if (this.cachedRev === revision.rev && samePending(revision.pending, this.cachedPending)) this.lineages.set(id, lineage);
      }
    }
    return result;
  }

  /**
   * Every account's lineage from the cache, without a read, when that is safe: the
   * membership's last poll of the revision started within the staleness bound and saw the
   * revision the cache was filled under, and no move or limit of this instance is newer.
   * A change made elsewhere is then seen within the bound; one made here, at once.
   */
  private cachedLineages(ids: readonly string[]): Map<string, Lineage> | undefined {
    if (!this.fastPathOpen()) return undefined;
    const result = new Map<string, Lineage>();
    for (const id of ids) {
      const lineage = this.lineages.get(id);
      if (!lineage) return undefined;
      result.set(id, lineage);
    }
    return result;
  }

  /** Whether caches filled under `cachedRev` may be answered without a read (see cachedLineages). */
  private fastPathOpen(): boolean {
    if (this.maxStalenessMs <= 0 || this.cachedRev < this.floorRev) return false;
    const seen = this.membership.seen(this.maxStalenessMs);
    return seen !== null && seen.rev === this.cachedRev && seen.pendingRev === (this.cachedPending?.rev ?? null);
  }

  /** Forgets the cached lineages (a cold cache, for measurements). */
  forgetLineages(): void {
    this.lineages.clear();
    this.descendants.clear();
  }

  /** The revision now, with the caches cleared if it moved since they were filled. */
  private async current(): Promise<RevisionDoc> {
    const revision = await this.revision();
    this.sync(revision);
    return revision;
  }

  /** Clears the caches when the revision read differs from the one they were filled under. */
  private sync(revision: RevisionDoc): void {
    if (revision.rev !== this.cachedRev || !samePending(revision.pending, this.cachedPending)) {
      this.lineages.clear();
      this.descendants.clear();
      this.cachedRev = revision.rev;
      this.cachedPending = revision.pending;
    }
  }

  /** The revision document; concurrent callers share one read. */
  private revision(): Promise<RevisionDoc> {
    return this.revisionReader.load('revision');
  }

  private async readLineages(
    ids: string[],
    pending: PendingMove | null,
    known: ReadonlyMap<string, HierarchyDoc | null> = new Map(),
  ): Promise<Map<string, Lineage>> {
    const docs = new Map<string, HierarchyDoc | null>(known);
    const parentOf = (id: string): string | null => {
      if (pending && pending.accountId === id) return pending.parentId;
      return docs.get(id)?.parentId ?? null;
    };
    let frontier = ids;
    // One query per level not read yet: at most MAX_DEPTH (+1 to see a malformed chain end).
    for (let level = 0; level <= MAX_DEPTH && frontier.length > 0; level++) {
      const toRead = frontier.filter((id) => !docs.has(id));
      if (toRead.length > 0) {
        const read = await this.deps.repository.accountsByIds(toRead);
        for (const id of toRead) docs.set(id, null);
        for (const doc of read) docs.set(doc._id, doc);
      }
      frontier = [...new Set(frontier.map(parentOf).filter((id): id is string => id !== null))];
    }
    const result = new Map<string, Lineage>();
    for (const id of ids) {
      const ancestors: string[] = [];
      for (let at = parentOf(id); at !== null && ancestors.length < MAX_DEPTH && !ancestors.includes(at); at = parentOf(at))
        ancestors.push(at);
      result.set(id, { ancestors, limits: docs.get(id)?.limits ?? {} });
    }
    return result;
  }

  /** The revision with nothing pending: a decided but unapplied move is applied first. */
  private async settledRevision(): Promise<RevisionDoc> {
    for (;;) {
      const revision = await this.deps.repository.revision();
      if (!revision.pending) return revision;
      await this.finish(revision.pending, revision.rev);
    }
  }

  /** Applies a decided move, audits it once, clears it, and publishes HierarchyChanged. */
  private async finish(move: PendingMove, clearAt = move.rev): Promise<void> {
    // The move is decided at move.rev: from now on this instance answers from no older cache.
    this.floorRev = Math.max(this.floorRev, move.rev);
    await this.deps.repository.apply(move);
    await this.deps.audit.recordMany(
      [
        {
          id: replayableId(move.at, 'account.parent_set', String(move.rev)),
          at: move.at,
          actor: move.actor,
          requestId: move.requestId,
          action: 'account.parent_set',
          targetType: 'Account',
          targetId: move.accountId,
          accountId: move.accountId,
          before: { parentId: move.previousParentId },
          after: { parentId: move.parentId },
        },
      ],
      { replay: true },
    );
    await this.deps.repository.clearPending(clearAt);
    const change = { accountId: move.accountId, parentId: move.parentId, previousParentId: move.previousParentId, rev: move.rev };
    await this.deps.events.publish('HierarchyChanged', change).catch((error: unknown) => {
      this.deps.logger.warn({ err: error, ...change }, 'a reaction to HierarchyChanged failed');
    });
  }

  /**
   * Validates a move against the settled hierarchy: no cycle (the parent is not the
   * account or below it) and no chain longer than MAX_DEPTH accounts once moved.
   */
  private async assertPlaceable(accountId: string, parentId: string): Promise<void> {
    const lineage = (await this.readLineages([parentId], null)).get(parentId)!;
    if (lineage.ancestors.includes(accountId)) {
      throw new BadInputError(
        `Cannot place "${accountId}" under "${parentId}": "${parentId}" is below "${accountId}", so this would make a cycle.`,
        { field: 'parentId' },
      );
    }
    const height = await this.subtreeHeight(accountId);
    const depth = lineage.ancestors.length + 1 + height;
    if (depth > MAX_DEPTH) {
      throw new BadInputError(
        `Cannot place "${accountId}" under "${parentId}": the hierarchy would be ${depth} accounts deep; at most ${MAX_DEPTH} are allowed.`,
        { field: 'parentId' },
      );
    }
  }

  /** Levels in the account's subtree, itself included (1 for a leaf). */
  private async subtreeHeight(accountId: string): Promise<number> {
    let level = [accountId];
    let height = 0;
    while (level.length > 0 && height <= MAX_DEPTH) {
      height++;
      level = (await this.deps.repository.childrenOf(level)).map((row) => row._id);
    }
    return height;
  }
}

function samePending(a: PendingMove | null, b: PendingMove | null): boolean {
  return (a?.rev ?? null) === (b?.rev ?? null);
}
