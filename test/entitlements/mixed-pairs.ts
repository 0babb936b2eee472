/** The 100 mixed check pairs the round-trip tests count commands for (issue 19). */
import type { TestInstance } from '../support/harness.js';
import { meteredAccount } from '../support/usage-fixtures.js';
import { aiAccount } from '../credits/fixtures.js';
import { pool, setLimit } from '../hierarchy/fixtures.js';

export type Check = { accountId: string; feature: string; requestedUnits?: string };

/**
 * 20 plain accounts (a metered and a boolean feature each), 10 credit-burning ones (the
 * burning and the credit feature) and a pool of 40 members, half of them capped: 100 pairs.
 */
export async function mixedPairs(instance: TestInstance) {
  const plain = await Promise.all(Array.from({ length: 20 }, () => meteredAccount(instance, { included: '1000' })));
  const ai = await Promise.all(Array.from({ length: 10 }, () => aiAccount(instance)));
  const shared = await pool(instance, { included: '100000', members: 40 });
  await Promise.all(shared.members.slice(0, 20).map((member) => setLimit(instance, member, 'api_calls', '10')));
  const checks: Check[] = [
    ...plain.flatMap(({ accountId }) => [
      { accountId, feature: 'api_calls', requestedUnits: '5' },
      { accountId, feature: 'sso' },
    ]),
    ...ai.flatMap(({ accountId }) => [
      { accountId, feature: 'gpt_large', requestedUnits: '4' },
      { accountId, feature: 'ai_credits' },
    ]),
    ...shared.members.map((accountId) => ({ accountId, feature: 'api_calls' })),
  ];
  return { plain, ai, shared, checks };
}
