import { randomUUID } from 'node:crypto';
import type { PostingDoc } from './model.js';
import type { UsageLedger } from './repository.js';

/**
 * The lease on a posting (R7 recovery, SPEC §6 "fencing on the lease owner"): whoever
 * holds it may write the posting; once it expires, a retry or the sweeper may take the
 * posting over, and every later write of the old owner fails its fence.
 */

/** The operation lost its posting to a takeover: someone else finishes it. */
export class LeaseLost extends Error {}

/** A fresh lease for this instance, `leaseMs` from `now`. */
export function newLease(instanceId: string, leaseMs: number, now = new Date()): PostingDoc['lease'] {
  return { owner: `${instanceId}/${randomUUID()}`, expiresAt: new Date(now.getTime() + leaseMs) };
}

/**
 * A worker must not apply after its lease has run out: by then a recoverer may own the
 * posting. Renewing (fenced) keeps a slow but live worker in charge.
 */
export async function ensureLease(ledger: UsageLedger, posting: PostingDoc, leaseMs: number): Promise<void> {
  const remaining = posting.lease.expiresAt.getTime() - Date.now();
  if (remaining > leaseMs / 3) return;
  const expiresAt = new Date(Date.now() + leaseMs);
  if (!(await ledger.renewLease(posting, expiresAt))) throw new LeaseLost();
  posting.lease = { ...posting.lease, expiresAt };
}
