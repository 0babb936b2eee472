import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../logger.js';
import { units, type Micros } from '../../shared/quantity.js';
import type { AuditLog } from '../audit/index.js';
import { type AutoTopUpDoc, autoTopUpId } from './model.js';
import type { TopUpRepository } from './repository.js';
import { AutoTopUpService, type CreditBalance } from './service.js';

const PERIOD = new Date('2026-03-01T00:00:00Z');

/**
 * One top-up per crossing, whatever the interleaving: several evaluations (instances,
 * counter changes, the repair pass) race over one balance, each of their reads and writes
 * scheduled in an order fast-check picks. The grants store is the real idempotency point
 * (a key is issued once); the balance is capacity − used + every grant issued so far.
 */
describe('auto top-up evaluation', () => {
  it('issues exactly the top-ups the balance needs to get back to `below`, under any interleaving', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.scheduler(),
        fc.integer({ min: 0, max: 200 }),
        fc.integer({ min: 1, max: 100 }),
        fc.integer({ min: 1, max: 120 }),
        fc.integer({ min: 1, max: 6 }),
        async (s, left, below, amount, racers) => {
          const issued = new Map<string, Micros>();
          const balance = async (): Promise<CreditBalance> => {
            const granted = [...issued.values()].reduce((sum, value) => sum + value, 0n);
            return { hasAccess: true, remaining: units(left) + granted, periodStart: PERIOD };
          };
          const setting: AutoTopUpDoc = {
            _id: autoTopUpId('acct', 'ai_credits'),
            accountId: 'acct',
            feature: 'ai_credits',
            below: units(below),
            amount: units(amount),
            price: null,
            enabled: true,
            updatedAt: PERIOD,
            updatedBy: 'test',
          };
          const service = new AutoTopUpService({
            repository: {} as TopUpRepository,
            audit: {} as AuditLog,
            logger: createLogger('silent'),
            featureType: async () => 'METERED',
            balance: s.scheduleFunction(balance),
            issuedUnder: s.scheduleFunction(
              async (_pair, prefix: string) => [...issued.keys()].filter((key) => key.startsWith(prefix)).length,
            ),
            issue: s.scheduleFunction(async (input: { idempotencyKey: string; amount: string }) => {
              if (!issued.has(input.idempotencyKey)) issued.set(input.idempotencyKey, units(Number(input.amount)));
            }),
            repairIntervalMs: 1_000,
          });
          // Each racer evaluates until it finds nothing to do, as counter changes and repair passes would.
          const racer = async () => {
            while (await service.evaluate(setting)) {}
          };
          const done = Promise.all(Array.from({ length: racers }, racer));
          await s.waitFor(done);
          const needed = left >= below ? 0 : Math.ceil((below - left) / amount);
          expect(issued.size).toBe(needed);
          expect([...issued.keys()].sort()).toEqual(
            Array.from({ length: needed }, (_, n) => `auto-top-up:ai_credits:${PERIOD.toISOString()}:${n}`).sort(),
          );
        },
      ),
      { numRuns: 200 },
    );
  });
});
