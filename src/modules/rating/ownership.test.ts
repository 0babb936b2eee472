/**
 * The rule that bills every unit once (ownership.ts), as properties over random accounts:
 * random contracts (plans, starts, ends, anchors) and random status histories.
 *
 * - Every counter that could have received usage (some instant of it at which the account
 *   had access and usage landed there) is rated on exactly one invoice of the account; no
 *   counter is rated on two.
 * - The owner never rates more than it could: included is at least the merged capacity the
 *   checks saw at any instant of the period, so a unit counted INCLUDED is never overage.
 * - A status change (always dated now) never changes who owns a period that has ended, nor
 *   its terms.
 *
 * Hand-written cases first: the defects the billing audit found, with their figures.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { OverageTerms, PlanVersionDoc } from '../catalog/index.js';
import { type ContractDoc, type ContractStatus, type StatusChange, asOf, billingEnd } from '../contracts/index.js';
import { periodContaining, type Period } from '../../shared/periods.js';
import { mergeEffectiveTerms } from '../entitlements/index.js';
import { counterId } from '../../shared/counter-key.js';
import type { Micros } from '../../shared/quantity.js';
import { decideOwnership, type UsageOwnership } from './ownership.js';
import { usagePeriodsRatedIn } from './periods.js';

const UNIT = 1_000_000n;
const DAY = 86_400_000;
const ACCOUNT = 'acct_p';
const FEATURE = 'rows';
const T0 = Date.UTC(2026, 1, 1); // 2026-02-01
const NOW = new Date(Date.UTC(2026, 6, 1)); // 2026-07-01
const at = (days: number) => new Date(T0 + days * DAY);

function plan(id: string, included: bigint | null, unitPrice: string | null): PlanVersionDoc {
  const overage: OverageTerms | null = unitPrice === null ? null : { unitPrice, per: UNIT, rounding: 'EXACT' };
  return {
    _id: `${id}@1`,
    key: id,
    version: 1,
    name: id,
    currency: 'USD',
    baseFee: null,
    billingPeriod: 'MONTH',
    entitlements: [
      {
        feature: FEATURE,
        enabled: true,
        included: included === null ? null : included * UNIT,
        resetPeriod: 'MONTH',
        enforcement: 'SOFT',
        grace: 0n,
        overage,
        thresholds: [80, 90, 100],
        config: null,
      },
    ],
    publishedAt: new Date(0),
    publishedBy: 'test',
  };
}

function contract(
  id: string,
  planId: string,
  startsAt: Date,
  options: { endsAt?: Date | null; anchor?: Date; statuses?: StatusChange[] } = {},
): ContractDoc {
  const statuses = options.statuses ?? [{ status: 'ACTIVE', at: startsAt }];
  const last = statuses.at(-1)!;
  return {
    _id: id,
    accountId: ACCOUNT,
    planKey: planId,
    planVersion: 1,
    planHistory: [{ planKey: planId, planVersion: 1, effectiveAt: startsAt }],
    status: last.status,
    statusHistory: statuses,
    canceledAt: last.status === 'CANCELED' ? last.at : null,
    startsAt,
    endsAt: options.endsAt ?? null,
    billingAnchor: options.anchor ?? startsAt,
    createdAt: new Date(0),
    updatedAt: new Date(0),
  };
}

/** What each contract's invoices rate: (contract, billing period start) per counter id. */
function ratedOn(
  contracts: readonly ContractDoc[],
  plans: ReadonlyMap<string, PlanVersionDoc>,
  now: Date,
  recorded = new Map<string, UsageOwnership>(),
) {
  const rated = new Map<string, Array<{ contractId: string; billing: string; owner: UsageOwnership }>>();
  for (const doc of contracts) {
    const end = billingEnd(doc);
    let billing = periodContaining(doc.billingAnchor, 'MONTH', doc.startsAt);
    // Every billing period of the contract's billed life that has started (resolveBillingPeriod's rule).
    while (billing.start.getTime() <= now.getTime() && (!end || billing.start.getTime() < end.getTime())) {
      const period = { start: billing.start, end: billing.end! };
      for (const usage of usagePeriodsRatedIn(doc.billingAnchor, 'MONTH', period, end)) {
        if (usage.start.getTime() > now.getTime()) continue;
        const id = counterId(ACCOUNT, FEATURE, usage.start);
        const owner = recorded.get(id) ?? decideOwnership({ accountId: ACCOUNT, feature: FEATURE, period: usage, contracts, plans, now });
        if (owner?.ownerId !== doc._id) continue;
        rated.set(id, [...(rated.get(id) ?? []), { contractId: doc._id, billing: period.start.toISOString(), owner }]);
      }
      billing = periodContaining(doc.billingAnchor, 'MONTH', billing.end!);
    }
  }
  return rated;
}

/** Counters usage could have landed in, sampled every 6 hours, with the largest capacity the checks saw. */
function reachable(contracts: readonly ContractDoc[], plans: ReadonlyMap<string, PlanVersionDoc>, now: Date) {
  const found = new Map<string, { period: Period; maxIncluded: Micros | null }>();
  for (let t = T0; t < now.getTime(); t += DAY / 4) {
    const instant = new Date(t);
    const merged = mergeEffectiveTerms({
      accountId: ACCOUNT,
      feature: FEATURE,
      featureType: 'METERED',
      contracts: contracts.map((doc) => asOf(doc, instant)),
      plans,
      at: instant,
    });
    if (!merged.hasAccess || !merged.counterId) continue;
    const seen = found.get(merged.counterId);
    const maxIncluded =
      seen === undefined
        ? merged.included
        : seen.maxIncluded === null || merged.included === null
          ? null
          : seen.maxIncluded > merged.included
            ? seen.maxIncluded
            : merged.included;
    found.set(merged.counterId, { period: merged.period!, maxIncluded });
  }
  return found;
}

describe('the billing audit cases: 1,300 units counted INCLUDED against 1,500 merged', () => {
  // Base: 1,000 included at $0.10. Add-on: 500 included at $0.10. Both from March 1.
  const plans = new Map([plan('base', 1000n, '0.10'), plan('addon', 500n, '0.10')].map((p) => [p._id, p]));
  const march: Period = { start: new Date('2026-03-01T00:00:00Z'), end: new Date('2026-04-01T00:00:00Z') };
  const decide = (contracts: ContractDoc[]) =>
    decideOwnership({ accountId: ACCOUNT, feature: FEATURE, period: march, contracts, plans, now: NOW });

  it('an add-on that ends mid-period: rated once, on the base contract, with 1,500 included', () => {
    const owner = decide([
      contract('ctr_a', 'base', march.start),
      contract('ctr_b', 'addon', march.start, { endsAt: new Date('2026-03-16T00:00:00Z') }),
    ]);
    expect(owner).toMatchObject({ ownerId: 'ctr_a', contributorIds: ['ctr_a', 'ctr_b'], included: 1500n * UNIT });
  });

  it('the base contract ends mid-period: still one owner, the older one, with both included amounts', () => {
    const contracts = [
      contract('ctr_a', 'base', march.start, { endsAt: new Date('2026-03-16T00:00:00Z') }),
      contract('ctr_b', 'addon', march.start),
    ];
    expect(decide(contracts)).toMatchObject({ ownerId: 'ctr_a', included: 1500n * UNIT });
    // And only ctr_a's invoice rates March.
    expect(ratedOn(contracts, plans, NOW).get(counterId(ACCOUNT, FEATURE, march.start))).toEqual([
      expect.objectContaining({ contractId: 'ctr_a' }),
    ]);
  });

  it('the base contract canceled later: March is judged with the statuses March had', () => {
    const canceledNow: StatusChange[] = [
      { status: 'ACTIVE', at: march.start },
      { status: 'CANCELED', at: new Date('2026-06-20T00:00:00Z') },
    ];
    const contracts = [contract('ctr_a', 'base', march.start, { statuses: canceledNow }), contract('ctr_b', 'addon', march.start)];
    expect(decide(contracts)).toMatchObject({ ownerId: 'ctr_a', included: 1500n * UNIT });
    expect(billingEnd(contracts[0]!)).toEqual(new Date('2026-06-20T00:00:00Z'));
  });

  it('a contract canceled before the period contributes nothing to it', () => {
    const canceled: StatusChange[] = [
      { status: 'ACTIVE', at: new Date('2026-02-01T00:00:00Z') },
      { status: 'CANCELED', at: new Date('2026-02-20T00:00:00Z') },
    ];
    const contracts = [
      contract('ctr_a', 'base', new Date('2026-02-01T00:00:00Z'), { statuses: canceled, anchor: march.start }),
      contract('ctr_b', 'addon', march.start),
    ];
    expect(decide(contracts)).toMatchObject({ ownerId: 'ctr_b', contributorIds: ['ctr_b'], included: 500n * UNIT });
  });
});

// ---- properties ---------------------------------------------------------------------------

const STATUSES: ContractStatus[] = ['ACTIVE', 'TRIALING', 'PAST_DUE', 'SUSPENDED', 'CANCELED'];

const contractArb = (index: number) =>
  fc
    .record({
      plan: fc.constantFrom('p0', 'p1', 'p2', 'p3'),
      start: fc.integer({ min: 0, max: 120 }),
      length: fc.option(fc.integer({ min: 1, max: 120 }), { nil: null }),
      anchor: fc.constantFrom('start', 'mar1', 'mar10'),
      initial: fc.constantFrom<ContractStatus>('ACTIVE', 'ACTIVE', 'TRIALING', 'SUSPENDED'),
      changes: fc.array(fc.record({ after: fc.integer({ min: 0, max: 150 }), status: fc.constantFrom(...STATUSES) }), { maxLength: 3 }),
    })
    .map(({ plan: planId, start, length, anchor, initial, changes }) => {
      const startsAt = at(start);
      const statuses: StatusChange[] = [{ status: initial, at: startsAt }];
      let t = start;
      for (const change of changes) {
        t += change.after + 1;
        if (change.status !== statuses.at(-1)!.status) statuses.push({ status: change.status, at: at(t) });
      }
      const anchorAt =
        anchor === 'start' ? startsAt : anchor === 'mar1' ? new Date('2026-03-01T00:00:00Z') : new Date('2026-03-10T00:00:00Z');
      return contract(`ctr_${index}`, planId, startsAt, {
        endsAt: length === null ? null : at(start + length),
        anchor: anchorAt,
        statuses,
      });
    });

const accountArb = fc.integer({ min: 1, max: 3 }).chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => contractArb(i))));

const PLANS = new Map(
  [plan('p0', 1000n, '0.10'), plan('p1', 500n, '0.05'), plan('p2', 0n, '0.20'), plan('p3', null, null)].map((p) => [p._id, p]),
);

describe('properties over random accounts', () => {
  it('rates every counter that could hold usage on exactly one invoice, never two', () => {
    let nonEmpty = 0;
    fc.assert(
      fc.property(accountArb, (contracts) => {
        const rated = ratedOn(contracts, PLANS, NOW);
        if (rated.size > 0) nonEmpty++;
        for (const [id, invoices] of rated) expect(invoices, id).toHaveLength(1);
        for (const [id, { maxIncluded }] of reachable(contracts, PLANS, NOW)) {
          const on = rated.get(id);
          expect(on, `${id} reachable but rated nowhere`).toHaveLength(1);
          // Never less included than the checks saw at any instant: what was INCLUDED stays included.
          const included = on![0]!.owner.included;
          if (maxIncluded === null) expect(included).toBeNull();
          else if (included !== null) expect(included >= maxIncluded).toBe(true);
        }
      }),
      { numRuns: 300 },
    );
    // Not vacuous: most random accounts have rated periods.
    expect(nonEmpty).toBeGreaterThan(150);
  });

  it('never moves an ended period to another owner or terms when a status changes now', () => {
    fc.assert(
      fc.property(accountArb, fc.nat({ max: 2 }), fc.constantFrom(...STATUSES), (contracts, pick, status) => {
        const before = ratedOn(contracts, PLANS, NOW);
        const target = contracts[pick % contracts.length]!;
        const later = new Date(NOW.getTime() + DAY);
        const changed = contracts.map((doc) =>
          doc._id !== target._id || doc.status === status
            ? doc
            : {
                ...doc,
                status,
                statusHistory: [...doc.statusHistory!, { status, at: later }],
                canceledAt: status === 'CANCELED' ? later : null,
              },
        );
        const after = ratedOn(changed, PLANS, later);
        for (const [id, invoices] of before) {
          const period = invoices[0]!.owner;
          // A period still running may gain or lose contributors from now on; ended ones may not.
          if (period.periodEnd === null || period.periodEnd.getTime() > NOW.getTime()) continue;
          expect(after.get(id), id).toEqual(invoices);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('follows the record made at finalisation whatever changes afterwards (endsAt, status)', () => {
    fc.assert(
      fc.property(accountArb, accountArb, (contracts, rewritten) => {
        // Finalising records the decision of every ended period; then every contract is rewritten at random.
        const recorded = new Map<string, UsageOwnership>();
        for (const invoices of ratedOn(contracts, PLANS, NOW).values()) {
          const owner = invoices[0]!.owner;
          if (owner.periodEnd !== null && owner.periodEnd.getTime() <= NOW.getTime()) recorded.set(owner.counterId, owner);
        }
        const changed = rewritten.map((doc, i) => ({ ...doc, _id: contracts[i]?._id ?? doc._id }));
        const after = ratedOn(changed, PLANS, NOW, recorded);
        for (const [id, invoices] of after) {
          expect(invoices.length, id).toBeLessThanOrEqual(1);
          if (recorded.has(id)) expect(invoices[0]!.owner).toBe(recorded.get(id));
        }
      }),
      { numRuns: 200 },
    );
  });
});
