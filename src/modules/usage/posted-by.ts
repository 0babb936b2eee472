import type { PostingDoc } from './model.js';

/**
 * Whether `doc` (the posting as read now) was set POSTED by this very attempt's mark: only
 * the owner of an attempt may mark it (the fence), and `postedAt` is that mark's own.
 */
export function postedBy(doc: PostingDoc | undefined, posting: PostingDoc, posted: { postedAt: Date }): boolean {
  return (
    doc?.state === 'POSTED' &&
    doc.attempt === posting.attempt &&
    doc.lease.owner === posting.lease.owner &&
    doc.postedAt?.getTime() === posted.postedAt.getTime()
  );
}
