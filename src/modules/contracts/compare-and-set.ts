import type { Collection } from 'mongodb';
import type { ContractDoc } from './model.js';

/**
 * Every contract write: replaces the document only if its revision is still the one read,
 * bumping it; null when someone wrote in between (the caller reads again and retries).
 * One document per write keeps this correct without transactions (SPEC §5).
 */
export async function compareAndSet(
  collection: Collection<ContractDoc>,
  existing: ContractDoc,
  next: ContractDoc,
): Promise<ContractDoc | null> {
  const written: ContractDoc = { ...next, revision: (existing.revision ?? 0) + 1, updatedAt: new Date() };
  const before = await collection.findOneAndReplace({ _id: existing._id, revision: existing.revision ?? null } as never, written, {
    returnDocument: 'before',
  });
  return before ? written : null;
}
