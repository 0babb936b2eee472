/**
 * What burn is computed from, loaded for many (account, feature) pairs at once: their
 * grants' clusters, the counters those clusters span (one query for every pair), and the
 * included amount of each of those periods (the terms in force, from the entitlements
 * module). burn.ts then does the arithmetic.
 */
import type { Micros } from '../../shared/quantity.js';
import type { EffectiveTerms } from '../entitlements/index.js';
import { hourStart } from '../../shared/counter-key.js';
import type { CounterHours } from '../usage/index.js';
import { clustersOf, simulateBurn, type BurnGrant, type BurnLedger } from './burn.js';
import type { GrantDoc } from './model.js';
import type { GrantCounters } from './model.js';
import { pairKey, type GrantRepository, type PairKey } from './repository.js';
import { decisionWindow, grantWindow, HOUR_MS } from './window.js';

/** Merged terms at an instant, sharing loaders across the calls of one operation. */
export type TermsAt = (requests: readonly PairKey[], at: Date) => Promise<EffectiveTerms[]>;

/** What one simulation is asked for: a pair's grants, which of them matter, up to when. */
export interface LedgerRequest {
  pair: PairKey;
  grants: readonly GrantDoc[];
  /** Grants whose burn is needed; only their clusters are simulated. */
  interest: ReadonlySet<string>;
  /** Usage up to this instant matters: clusters starting later and periods starting later are skipped. */
  until: Date;
  /** The included amount of one period, already known from terms in hand. */
  known?: { periodStart: Date; included: Micros | null };
}

export class BurnLedgers {
  constructor(
    private readonly deps: {
      repository: GrantRepository;
      counters: GrantCounters;
      /** The entitlements module's term resolution; a fresh resolver per operation. */
      openTerms: () => TermsAt;
    },
  ) {}

  /**
   * Burn ledgers for several pairs: one counters query for all of them, then the included
   * amount of each period from the terms in force (R3: an included amount applies to the
   * whole period): now for the period containing now, otherwise at the period's last
   * counted hour, when the account demonstrably had access.
   */
  async load(requests: readonly LedgerRequest[]): Promise<Map<string, BurnLedger>> {
    const now = new Date();
    const plans = requests.map((request) => {
      const grants = request.grants.map(toBurnGrant);
      const clusters = clustersOf(grants).filter(
        (cluster) => cluster.start <= request.until && cluster.grants.some((grant) => request.interest.has(grant.id)),
      );
      return { request, clusters, grants: clusters.flatMap((cluster) => cluster.grants) };
    });
    const spans = plans
      .filter((plan) => plan.clusters.length > 0)
      .map((plan) => ({ ...plan.request.pair, from: plan.clusters[0]!.start, through: plan.request.until }));
    const counters = groupByPair(await this.deps.counters.countersFor(spans));

    const periodsOf = plans.map((plan) => {
      const inCluster = (counter: CounterHours) =>
        plan.clusters.some(
          (cluster) =>
            (cluster.end === null || counter.periodStart < cluster.end) &&
            (counter.periodEnd === null || counter.periodEnd > cluster.start),
        );
      return (counters.get(pairKey(plan.request.pair)) ?? []).filter(
        (counter) => counter.periodStart <= plan.request.until && inCluster(counter),
      );
    });
    const included = await this.includedAmounts(
      plans.map((plan, i) => ({ request: plan.request, counters: periodsOf[i]! })),
      now,
    );

    const ledgers = new Map<string, BurnLedger>();
    plans.forEach((plan, i) => {
      const periods = periodsOf[i]!.map((counter) => ({
        counterId: counter._id,
        start: counter.periodStart,
        end: counter.periodEnd,
        included: included.get(counter._id) ?? null,
        hours: counter.hours,
      }));
      ledgers.set(pairKey(plan.request.pair), simulateBurn(plan.grants, periods));
    });
    return ledgers;
  }

  private async includedAmounts(
    entries: ReadonlyArray<{ request: LedgerRequest; counters: readonly CounterHours[] }>,
    now: Date,
  ): Promise<Map<string, Micros | null>> {
    const included = new Map<string, Micros | null>();
    const byInstant = new Map<number, Array<{ counterId: string; pair: PairKey }>>();
    for (const { request, counters } of entries) {
      for (const counter of counters) {
        if (request.known && counter.periodStart.getTime() === request.known.periodStart.getTime()) {
          included.set(counter._id, request.known.included);
          continue;
        }
        const instant = includedInstant(counter, now).getTime();
        byInstant.set(instant, [...(byInstant.get(instant) ?? []), { counterId: counter._id, pair: request.pair }]);
      }
    }
    if (byInstant.size === 0) return included;
    const termsAt = this.deps.openTerms();
    await Promise.all(
      [...byInstant].map(async ([instant, wanted]) => {
        const terms = await termsAt(
          wanted.map(({ pair }) => pair),
          new Date(instant),
        );
        wanted.forEach(({ counterId }, i) => {
          included.set(counterId, terms[i]?.included ?? null);
        });
      }),
    );
    return included;
  }
}

export function toBurnGrant(doc: GrantDoc): BurnGrant & { doc: GrantDoc } {
  return {
    doc,
    id: doc._id,
    amount: doc.amount,
    priority: doc.priority,
    effectiveAt: doc.effectiveAt,
    expiresAt: doc.expiresAt,
    issuedAt: doc.issuedAt,
    window: grantWindow(doc),
    decisionWindow: decisionWindow(doc),
    cuts: [doc.startCut, doc.voidCut].filter((cut): cut is NonNullable<typeof cut> => cut !== null),
  };
}

export function groupByPair<T extends PairKey>(docs: readonly T[]): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const doc of docs) {
    const key = pairKey(doc);
    groups.set(key, [...(groups.get(key) ?? []), doc]);
  }
  return groups;
}

/**
 * The instant whose terms give a period's included amount: now for the current period,
 * else the end of its last counted hour (inside the period), when usage was accepted and
 * the account therefore had access.
 */
function includedInstant(counter: Pick<CounterHours, 'periodStart' | 'periodEnd' | 'hours'>, now: Date): Date {
  if (counter.periodStart <= now && (counter.periodEnd === null || now < counter.periodEnd)) return now;
  const keys = Object.keys(counter.hours).sort();
  const last = keys.at(-1);
  const lastEnd = last ? hourStart(last).getTime() + HOUR_MS : counter.periodStart.getTime() + 1;
  return new Date(Math.min(lastEnd, counter.periodEnd?.getTime() ?? Infinity, now.getTime()) - 1);
}
