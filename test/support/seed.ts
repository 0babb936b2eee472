import type { Db } from 'mongodb';
import type { ContractDoc } from '../../src/modules/contracts/model.js';

/** Inserts contracts straight into the collection, for tests that predate the contracts API. */
export async function insertContracts(db: Db, contracts: Array<Partial<ContractDoc> & { _id: string; accountId: string }>): Promise<void> {
  const now = new Date();
  await db.collection<ContractDoc>('contracts').insertMany(
    contracts.map((contract) => ({
      planKey: 'growth',
      planVersion: 1,
      status: 'ACTIVE' as const,
      startsAt: new Date('2026-01-01T00:00:00Z'),
      endsAt: null,
      billingAnchor: new Date('2026-01-01T00:00:00Z'),
      createdAt: now,
      updatedAt: now,
      ...contract,
    })),
  );
}
