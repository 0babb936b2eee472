import type { Collection } from 'mongodb';
import { toMicros } from '../../shared/quantity.js';
import type { PostingDoc } from '../usage/model.js';
import type { LatePosting, LateUsageSource } from './sources.js';

/**
 * Late postings (R8) as the usage module stores them: POSTED, flagged `late` by the usage
 * engine when the counter it incremented was already final, with the accepted increment
 * in `inc` and the accepted events in its ACCEPTED outcome runs. Read-only, through the
 * usage service's ledger (the same collection `services.usage.latePostings` reads).
 */
export function lateUsageFrom(postings: Collection<PostingDoc>): LateUsageSource {
  return async (counterIds) => {
    if (counterIds.length === 0) return [];
    const docs = await postings
      .find({ counterId: { $in: [...counterIds] }, late: true, state: 'POSTED' }, { projection: { counterId: 1, inc: 1, outcomes: 1, postedAt: 1 } })
      .toArray();
    return docs.map(
      (doc): LatePosting => ({
        postingId: doc._id,
        counterId: doc.counterId!,
        units: toMicros(doc.inc ?? 0n),
        events: (doc.outcomes ?? []).filter((run) => run.outcome === 'ACCEPTED').reduce((sum, run) => sum + run.last - run.first + 1, 0),
        postedAt: doc.postedAt ?? null,
      }),
    );
  };
}
