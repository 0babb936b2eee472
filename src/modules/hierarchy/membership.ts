import type { Logger } from '../../logger.js';
import { type Periodic, startPeriodic } from '../../shared/periodic.js';
import { MAX_DEPTH, type RevisionDoc } from './model.js';
import type { HierarchyRepository } from './repository.js';

/** Background reads are tagged, so they are never mistaken for a request's round trips. */
export const HIERARCHY_WATCH_COMMENT = 'allotment:hierarchy-watch';

/**
 * Which accounts have a parent, held in memory and refreshed whenever the hierarchy
 * revision moves (polled every `intervalMs`, and at once after this instance's own moves).
 * The revision it last read is also the lineage cache's feed (`seen`).
 *
 * The check path consults it for accounts that have contracts but lack the feature: those
 * not in the set cost no hierarchy read at all, which keeps the unpooled check within its
 * read budget. It is safe because it can only be stale one way that matters: an account
 * placed under a parent on another instance a moment ago is still refused (NOT_ENTITLED)
 * here for at most one interval, i.e. it fails closed. Accounts in the set, and accounts
 * without any contract, always read the hierarchy fresh (see HierarchyService.lineage), so
 * moves, detaches and caps are seen at once, and no limit is ever enforced from a stale
 * read. Memory: one id per account that has a parent.
 *
 * It also holds each member's parent, so the check path can guess a member's ancestors
 * before it reads the hierarchy and load their contracts in the same query as the
 * member's own (`likelyAncestors`). A guess only: the lineage is still read fresh, and an
 * ancestor the guess missed (a move not yet in the snapshot) costs one more contracts read.
 */
export class MembershipSnapshot {
  /** Child account id → its parent's id. */
  private members = new Map<string, string>();
  private rev = -1;
  private pendingRev: number | null = null;
  private periodic: Periodic | undefined;
  private refreshing: Promise<void> | undefined;
  private lastOkPassStart = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly repository: HierarchyRepository,
    private readonly logger: Logger,
    private readonly intervalMs = 100,
  ) {}

  /**
   * The revision (and pending move's revision) as of the last pass, and whether that pass
   * started within `maxAgeMs`: the lineage cache's feed (HierarchyService.lineage).
   */
  seen(maxAgeMs: number, now = Date.now()): { rev: number; pendingRev: number | null } | null {
    return now - this.lastOkPassStart <= maxAgeMs ? { rev: this.rev, pendingRev: this.pendingRev } : null;
  }

  /** The account's ancestors as of the last refresh, nearest first (none when it had no parent). */
  likelyAncestors(accountId: string): string[] {
    const ancestors: string[] = [];
    let at = this.members.get(accountId);
    while (at !== undefined && ancestors.length < MAX_DEPTH && !ancestors.includes(at)) {
      ancestors.push(at);
      at = this.members.get(at);
    }
    return ancestors;
  }

  /** Whether the account had a parent as of the last refresh. */
  has(accountId: string): boolean {
    return this.members.has(accountId);
  }

  async start(): Promise<void> {
    await this.refresh();
    this.periodic ??= startPeriodic(
      () => this.refresh(),
      this.intervalMs,
      (error) => this.logger.warn({ err: error }, 'hierarchy membership refresh failed'),
    );
  }

  async stop(): Promise<void> {
    await this.periodic?.stop();
    this.periodic = undefined;
  }

  /** Re-reads the members when the revision moved; concurrent callers share one pass. */
  refresh(): Promise<void> {
    this.refreshing ??= this.pass().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  private async pass(): Promise<void> {
    const startedAt = Date.now();
    const revision: RevisionDoc = await this.repository.revision(HIERARCHY_WATCH_COMMENT);
    const pendingRev = revision.pending?.rev ?? null;
    if (revision.rev === this.rev && pendingRev === this.pendingRev) {
      this.lastOkPassStart = Math.max(this.lastOkPassStart, startedAt);
      return;
    }
    const members = new Map((await this.repository.childParents(HIERARCHY_WATCH_COMMENT)).map((doc) => [doc._id, doc.parentId]));
    const pending = revision.pending;
    if (pending && pending.parentId === null) members.delete(pending.accountId);
    if (pending && pending.parentId !== null) members.set(pending.accountId, pending.parentId);
    this.members = members;
    this.rev = revision.rev;
    this.pendingRev = pendingRev;
    this.lastOkPassStart = Math.max(this.lastOkPassStart, startedAt);
  }
}
