import type { Logger } from '../../logger.js';
import { type Periodic, startPeriodic } from '../../shared/periodic.js';
import type { GrantAction, GrantDoc } from './model.js';
import type { GrantRepository } from './repository.js';

/**
 * Tags the announcer's periodic reads, so tools that count a request's database round
 * trips (the test harness's requestCommands) can tell them from the request's own.
 */
export const GRANT_ANNOUNCER_COMMENT = 'allotment:grant-announcer';

/** How long an issue's announcement may be owed before the announcer makes it. */
export const ANNOUNCE_GRACE_MS = 5_000;
/** How many grants one pass looks at. */
const PASS_LIMIT = 100;

export interface AnnouncerDeps {
  repository: GrantRepository;
  /** GrantService.reannounce: publishes GrantChanged again and clears the flag; true when published. */
  reannounce: (grant: GrantDoc, action: GrantAction) => Promise<boolean>;
  /** How long a void may still be running after its first write (GrantService.voidDurationMs). */
  voidDurationMs: number;
  logger: Logger;
  intervalMs: number;
}

/**
 * R21 for grants: no `grant.issued` / `grant.voided` is lost. The insert of a grant and
 * the void's first write record the announcement they owe (`announce`, `announceSince`);
 * the request clears it once GrantChanged was published. If the publish failed (a
 * reaction such as the webhook outbox write failed) or the process died before it, the
 * flag stays, and this pass publishes again once the owing operation has had time to
 * finish: ANNOUNCE_GRACE_MS for an issue, the void's longest duration plus that for a void.
 *
 * A double publish (a slow request and this pass both publishing) is harmless, because
 * every GrantChanged reaction is idempotent: the webhook outbox row and its deliveries
 * have ids derived from the grant id and the action, alerts' re-arm is a compare-and-set,
 * and a balance push is a fresh read. Every instance runs one; they may race freely.
 * Grants stored before the flag existed carry none and are never re-announced.
 */
export class GrantAnnouncer {
  private periodic: Periodic | undefined;

  constructor(private readonly deps: AnnouncerDeps) {}

  start(): void {
    this.periodic ??= startPeriodic(
      () => this.pass(),
      this.deps.intervalMs,
      (error) => this.deps.logger.error({ err: error }, 'grant announcer pass failed'),
    );
  }

  async stop(): Promise<void> {
    await this.periodic?.stop();
    this.periodic = undefined;
  }

  /** One pass as of `now`; exported for tests and for an operator's manual run. How many were announced. */
  async pass(now = new Date()): Promise<number> {
    const { repository, reannounce, logger } = this.deps;
    const owed = await repository.owedAnnouncements(new Date(now.getTime() - ANNOUNCE_GRACE_MS), PASS_LIMIT, GRANT_ANNOUNCER_COMMENT);
    const voidCutoff = now.getTime() - ANNOUNCE_GRACE_MS - this.deps.voidDurationMs;
    let announced = 0;
    for (const grant of owed) {
      const actions = grant.announce ?? [];
      if (actions.length === 0) {
        await repository.dropEmptyAnnouncement(grant);
        continue;
      }
      // A void may still be running (awaiting usage to settle before its cut): leave it be.
      if (actions.includes('voided') && grant.announceSince!.getTime() >= voidCutoff) continue;
      // In the order they happened: issued before voided.
      for (const action of (['issued', 'voided'] as const).filter((candidate) => actions.includes(candidate))) {
        try {
          if (await reannounce(grant, action)) announced++;
        } catch (error) {
          logger.error({ err: error, grantId: grant._id, action }, 'grant announcer could not announce; the next pass retries');
        }
      }
    }
    return announced;
  }
}
