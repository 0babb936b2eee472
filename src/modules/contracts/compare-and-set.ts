import type { ContractDoc } from './model.js';
import type { ContractRepository } from './repository.js';

/**
 * Every contract write: replaces the document only if its revision is still the one read,
 * bumping it; null when someone wrote in between (the caller reads again and retries).
 * One document per write keeps this correct without transactions (SPEC §5). `updatedAt`
 * is the terms cache's feed stamp; the instance's cache forgets the account at once.
 */
export async function compareAndSet(repository: ContractRepository, existing: ContractDoc, next: ContractDoc): Promise<ContractDoc | null> {
  const written: ContractDoc = { ...next, revision: (existing.revision ?? 0) + 1, updatedAt: new Date() };
  try {
    const before = await repository.collection.findOneAndReplace(
      { _id: existing._id, revision: existing.revision ?? null } as never,
      written,
      { returnDocument: 'before' },
    );
    return before ? written : null;
  } finally {
    repository.touched([existing.accountId, next.accountId]);
  }
}
