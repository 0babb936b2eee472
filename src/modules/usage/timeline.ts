import { type ContractDoc, pinsOf } from '../contracts/index.js';
import type { EffectiveTerms } from '../entitlements/index.js';
import type { TermsAtInstant, TermsResolver } from './terms.js';

/**
 * Terms for events at many instants with few resolutions. A batch of 1,000 events with
 * their own timestamps would otherwise merge contracts 1,000 times for the same answer.
 *
 * By R3/R4 (contracts/plan-history.ts, entitlements/merge.ts) the terms of an account's
 * feature depend on the instant only through which contracts are in force
 * (startsAt <= t < endsAt), which plan pin each is on (effectiveAt), and the usage period
 * containing t. So between two consecutive contract breakpoints and inside one period
 * they are constant, and one resolution serves every instant there. timeline.test.ts
 * checks this equivalence against the merge itself across boundaries of every kind, so a
 * new time dependency in the merge rules fails a test instead of enforcing stale terms.
 */
export function termsTimeline(
  resolveAt: TermsAtInstant,
  contractsOf: (accountId: string) => Promise<readonly ContractDoc[]>,
): TermsResolver {
  return async (requests) => {
    const results = new Array<EffectiveTerms>(requests.length);
    const groups = new Map<string, Array<{ index: number; at: number }>>();
    requests.forEach((request, index) => {
      const group = JSON.stringify([request.accountId, request.feature]);
      let members = groups.get(group);
      if (!members) {
        members = [];
        groups.set(group, members);
      }
      members.push({ index, at: request.at.getTime() });
    });
    await Promise.all(
      [...groups.values()].map(async (members) => {
        const { accountId, feature } = requests[members[0]!.index]!;
        const breakpoints = contractBreakpoints(await contractsOf(accountId));
        members.sort((a, b) => a.at - b.at);
        let current: { terms: EffectiveTerms; from: number; until: number } | undefined;
        for (const { index, at } of members) {
          if (!current || at < current.from || at >= current.until) {
            const [terms] = await resolveAt([{ accountId, feature }], new Date(at));
            // Pooled terms (R13) hang on the owner's contracts, whose breakpoints are not
            // these: such terms are reused for the same instant only.
            current = terms!.pool
              ? { terms: terms!, from: at, until: at + 1 }
              : { terms: terms!, ...constantSpan(terms!, breakpoints, at) };
          }
          results[index] = current.terms;
        }
      }),
    );
    return results;
  };
}

/** Sorted instants (ms) at which an account's contracts start, end or change plan. */
export function contractBreakpoints(contracts: readonly ContractDoc[]): number[] {
  const instants = new Set<number>();
  for (const contract of contracts) {
    instants.add(contract.startsAt.getTime());
    if (contract.endsAt) instants.add(contract.endsAt.getTime());
    for (const pin of pinsOf(contract)) instants.add(pin.effectiveAt.getTime());
  }
  return [...instants].sort((a, b) => a - b);
}

/** [from, until) around `at` where these terms hold: no breakpoint inside, one period. */
function constantSpan(terms: EffectiveTerms, breakpoints: readonly number[], at: number): { from: number; until: number } {
  let from = -Infinity;
  let until = Infinity;
  for (const instant of breakpoints) {
    if (instant <= at) from = instant;
    else {
      until = instant;
      break;
    }
  }
  if (terms.period) {
    from = Math.max(from, terms.period.start.getTime());
    if (terms.period.end) until = Math.min(until, terms.period.end.getTime());
  }
  return { from, until };
}
