import { describe, expect, it } from 'vitest';
import { units, type Micros } from '../../shared/quantity.js';
import { hourKey } from '../../shared/counter-key.js';
import {
  clustersOf,
  compareBurnOrder,
  grantedInPeriod,
  hourSlices,
  simulateBurn,
  standingIn,
  type BurnGrant,
  type BurnPeriod,
} from './burn.js';
import type { HourCut } from './model.js';
import { decisionWindow, grantWindow, isActiveAt, startAtIssue } from './window.js';

const T = (iso: string) => new Date(iso);
const MAR = { start: T('2026-03-01T00:00:00Z'), end: T('2026-04-01T00:00:00Z') };
const APR = { start: T('2026-04-01T00:00:00Z'), end: T('2026-05-01T00:00:00Z') };

function grant(
  id: string,
  amount: number,
  changes: Partial<BurnGrant> & { from?: string; until?: string | null; cuts?: HourCut[] } = {},
): BurnGrant {
  const effectiveAt = T(changes.from ?? '2026-03-01T00:00:00Z');
  const expiresAt = changes.until ? T(changes.until) : null;
  return {
    id,
    amount: units(amount),
    priority: 10,
    effectiveAt,
    expiresAt,
    issuedAt: T('2026-02-01T00:00:00Z'),
    window: grantWindow({ effectiveAt, expiresAt, startCut: null, voidedAt: null, voidCut: null }),
    cuts: [],
    ...changes,
  };
}

function period(range: { start: Date; end: Date }, included: number | null, usage: Record<string, number>): BurnPeriod {
  const hours: Record<string, Micros> = {};
  for (const [iso, amount] of Object.entries(usage)) hours[hourKey(T(iso))] = units(amount);
  return {
    counterId: `acct|api_calls|${range.start.toISOString()}`,
    ...range,
    included: included === null ? null : units(included),
    hours,
  };
}

const burnedOf = (ledger: ReturnType<typeof simulateBurn>) =>
  Object.fromEntries([...ledger.burned].map(([id, micros]) => [id, Number(micros / 1_000_000n)]));

describe('burn order (R5)', () => {
  it('burns the included amount first, then the grant, and leaves the rest uncovered (the seed scenario)', () => {
    const ledger = simulateBurn(
      [grant('g', 500_000)],
      [period(MAR, 10_000_000, { '2026-03-02T10:00:00Z': 6_000_000, '2026-03-03T10:00:00Z': 4_600_000 })],
    );
    const [march] = ledger.periods;
    expect(march).toMatchObject({ used: units(10_600_000), includedBurned: units(10_000_000), uncovered: units(100_000) });
    expect(burnedOf(ledger)).toEqual({ g: 500_000 });
    expect(
      march!.lines.map((line) => [
        line.source,
        line.grantId,
        line.from.toISOString(),
        line.to.toISOString(),
        Number(line.units / 1_000_000n),
      ]),
    ).toEqual([
      ['INCLUDED', null, '2026-03-02T10:00:00.000Z', '2026-03-03T11:00:00.000Z', 10_000_000],
      ['GRANT', 'g', '2026-03-03T10:00:00.000Z', '2026-03-03T11:00:00.000Z', 500_000],
      ['UNCOVERED', null, '2026-03-03T10:00:00.000Z', '2026-03-03T11:00:00.000Z', 100_000],
    ]);
  });

  it('orders grants by priority, then earliest expiry (none last), then effectiveAt, then creation', () => {
    const grants = [
      grant('late_expiry', 10, { until: '2026-03-30T00:00:00Z' }),
      grant('no_expiry', 10),
      grant('early_expiry', 10, { until: '2026-03-20T00:00:00Z' }),
      grant('top_priority', 10, { priority: 1 }),
      grant('later_effective', 10, { until: '2026-03-20T00:00:00Z', from: '2026-03-01T01:00:00Z' }),
      grant('created_second', 10, { until: '2026-03-20T00:00:00Z', from: '2026-03-01T01:00:00Z', issuedAt: T('2026-02-02T00:00:00Z') }),
    ];
    expect([...grants].sort(compareBurnOrder).map((g) => g.id)).toEqual([
      'top_priority',
      'early_expiry',
      'later_effective',
      'created_second',
      'late_expiry',
      'no_expiry',
    ]);
    // 45 beyond included: the first four take 10 each, late_expiry the last 5.
    const ledger = simulateBurn(grants, [period(MAR, 100, { '2026-03-05T00:00:00Z': 145 })]);
    expect(burnedOf(ledger)).toEqual({ top_priority: 10, early_expiry: 10, later_effective: 10, created_second: 10, late_expiry: 5 });
  });

  it('never burns a grant for usage outside its window, and moves on to the next grant', () => {
    const early = grant('early', 100, { priority: 1, until: '2026-03-10T00:00:00Z' });
    const backup = grant('backup', 100);
    const ledger = simulateBurn([early, backup], [period(MAR, 10, { '2026-03-05T00:00:00Z': 30, '2026-03-15T00:00:00Z': 50 })]);
    expect(burnedOf(ledger)).toEqual({ early: 20, backup: 50 });
  });

  it('carries a grant balance across periods, processing them chronologically', () => {
    const shared = grant('shared', 100, { until: '2026-05-01T00:00:00Z' });
    const periods = [period(APR, 100, { '2026-04-02T00:00:00Z': 150 }), period(MAR, 100, { '2026-03-02T00:00:00Z': 130 })];
    const ledger = simulateBurn([shared], periods);
    expect(ledger.periods.map((p) => [p.start.toISOString(), p.availableAtStart.get('shared'), p.burned.get('shared')])).toEqual([
      ['2026-03-01T00:00:00.000Z', units(100), units(30)],
      ['2026-04-01T00:00:00.000Z', units(70), units(50)],
    ]);
    // Capacity in April: the part not burned in earlier periods.
    expect(grantedInPeriod(shared, APR, T('2026-04-10T00:00:00Z'), ledger)).toBe(units(70));
  });

  it('treats unlimited included as covering everything: no grant burns', () => {
    expect(burnedOf(simulateBurn([grant('g', 5)], [period(MAR, null, { '2026-03-02T00:00:00Z': 1_000 })]))).toEqual({});
  });

  it('is exact in micro-units', () => {
    const ledger = simulateBurn(
      [grant('g', 1)],
      [{ ...period(MAR, 0, {}), included: 100_000n, hours: { [hourKey(T('2026-03-02T00:00:00Z'))]: 300_000n } }],
    );
    expect(ledger.burned.get('g')).toBe(200_000n);
  });

  it('recomputes the same burn from the same facts', () => {
    const facts = () =>
      [
        [grant('a', 7, { priority: 2 }), grant('b', 9)],
        [period(MAR, 3, { '2026-03-02T00:00:00Z': 5, '2026-03-03T00:00:00Z': 11 })],
      ] as const;
    expect(simulateBurn(...facts())).toEqual(simulateBurn(...facts()));
  });
});

describe('windows at one-hour resolution', () => {
  it('rounds boundaries without a cut inward to whole hours', () => {
    const window = grantWindow({
      effectiveAt: T('2026-03-02T10:20:00Z'),
      expiresAt: T('2026-03-02T14:30:00Z'),
      startCut: null,
      voidedAt: null,
      voidCut: null,
    });
    expect(window).toEqual({ start: T('2026-03-02T11:00:00Z'), end: T('2026-03-02T14:00:00Z') });
    expect(isActiveAt(window, T('2026-03-02T10:59:59Z'))).toBe(false);
    expect(isActiveAt(window, T('2026-03-02T13:59:59Z'))).toBe(true);
    expect(isActiveAt(window, T('2026-03-02T14:00:00Z'))).toBe(false);
  });

  it('starts a grant at issuance when effectiveAt is omitted or earlier in the current hour', () => {
    const now = T('2026-03-02T10:20:00Z');
    expect(startAtIssue(null, now)).toEqual({ effectiveAt: now, cutAt: now });
    expect(startAtIssue(T('2026-03-02T10:05:00Z'), now)).toEqual({ effectiveAt: T('2026-03-02T10:05:00Z'), cutAt: now });
    expect(startAtIssue(T('2026-03-02T10:00:00Z'), now).cutAt).toBeNull();
    expect(startAtIssue(T('2026-03-02T09:30:00Z'), now).cutAt).toBeNull();
    expect(startAtIssue(T('2026-03-02T10:40:00Z'), now).cutAt).toBeNull();
  });

  it('splits an hour at a cut: a grant issued at 10:20 does not burn the usage counted before', () => {
    const cut = { at: T('2026-03-02T10:20:00Z'), units: units(40) };
    const issued = grant('g', 100, { window: { start: cut.at, end: null }, cuts: [cut] });
    const ledger = simulateBurn([issued], [period(MAR, 0, { '2026-03-02T10:00:00Z': 70 })]);
    expect(ledger.periods[0]!.lines.map((line) => [line.source, line.from.toISOString(), Number(line.units / 1_000_000n)])).toEqual([
      ['UNCOVERED', '2026-03-02T10:00:00.000Z', 40],
      ['GRANT', '2026-03-02T10:20:00.000Z', 30],
    ]);
  });

  it('keeps the burn before a void and burns nothing after it, within the same hour', () => {
    const voidCut = { at: T('2026-03-02T10:30:00Z'), units: units(25) };
    const window = grantWindow({ effectiveAt: MAR.start, expiresAt: null, startCut: null, voidedAt: voidCut.at, voidCut });
    const voided = grant('g', 100, { window, cuts: [voidCut] });
    const ledger = simulateBurn([voided], [period(MAR, 10, { '2026-03-02T09:00:00Z': 5, '2026-03-02T10:00:00Z': 40 })]);
    // 09:00: 5 included. 10:00-10:30: 25, of which 5 included and 20 from the grant. After the void: 15 uncovered.
    expect(ledger.burned.get('g')).toBe(units(20));
    expect(ledger.periods[0]!.uncovered).toBe(units(15));
    expect(grantedInPeriod(voided, MAR, T('2026-03-02T11:00:00Z'), ledger)).toBe(units(20));
  });

  it('lets no decision after a void count on the grant in the void hour, while burn keeps what it covered there', () => {
    const voidCut = { at: T('2026-03-02T10:30:00Z'), units: units(25) };
    const facts = { effectiveAt: MAR.start, expiresAt: null, startCut: null, voidedAt: voidCut.at, voidCut };
    const voided = grant('g', 100, { window: grantWindow(facts), decisionWindow: decisionWindow(facts), cuts: [voidCut] });
    const ledger = simulateBurn([voided], [period(MAR, 10, { '2026-03-02T10:00:00Z': 40 })]);
    expect(standingIn(voided, MAR, T('2026-03-02T09:30:00Z'))).toBe('ACTIVE');
    // A late event stamped 10:15, decided after the void: the grant adds only what it burned.
    expect(standingIn(voided, MAR, T('2026-03-02T10:15:00Z'))).toBe('CLOSED');
    expect(grantedInPeriod(voided, MAR, T('2026-03-02T10:15:00Z'), ledger)).toBe(units(15));
  });

  it('counts a void whose cut is not written yet from the start of its hour (never generous)', () => {
    const window = grantWindow({
      effectiveAt: MAR.start,
      expiresAt: null,
      startCut: null,
      voidedAt: T('2026-03-02T10:30:00Z'),
      voidCut: null,
    });
    expect(window.end).toEqual(T('2026-03-02T10:00:00Z'));
  });

  it('clamps cuts to the bucket, so slices always sum to the hour', () => {
    const slices = hourSlices(hourKey(T('2026-03-02T10:00:00Z')), units(10), MAR, [{ at: T('2026-03-02T10:20:00Z'), units: units(30) }]);
    expect(slices.map((slice) => slice.units)).toEqual([units(10)]);
  });

  it('keeps a period boundary inside an hour: each counter holds its own part of the hour', () => {
    const anchorMidHour = { start: T('2026-03-01T10:30:00Z'), end: T('2026-04-01T10:30:00Z') };
    const slices = hourSlices(hourKey(T('2026-03-01T10:00:00Z')), units(5), anchorMidHour, []);
    expect(slices).toEqual([{ from: T('2026-03-01T10:30:00Z').getTime(), to: T('2026-03-01T11:00:00Z').getTime(), units: units(5) }]);
  });
});

describe('capacity a grant adds (R5)', () => {
  const g = grant('g', 50, { until: '2026-03-10T00:00:00Z' });
  const ledger = simulateBurn([g], [period(MAR, 100, { '2026-03-02T00:00:00Z': 120 })]);

  it('adds the whole unburned amount while active, and what it burned here once it has expired', () => {
    expect(grantedInPeriod(g, MAR, T('2026-03-05T00:00:00Z'), ledger)).toBe(units(50));
    expect(grantedInPeriod(g, MAR, T('2026-03-15T00:00:00Z'), ledger)).toBe(units(20));
    expect(grantedInPeriod(g, APR, T('2026-04-02T00:00:00Z'), ledger)).toBe(0n);
  });

  it('adds nothing before it starts', () => {
    const pending = grant('p', 50, { from: '2026-03-20T00:00:00Z' });
    expect(grantedInPeriod(pending, MAR, T('2026-03-15T00:00:00Z'), null)).toBe(0n);
  });

  it('groups overlapping windows into clusters that can be burned independently', () => {
    const clusters = clustersOf([
      grant('a', 1, { until: '2026-03-05T00:00:00Z' }),
      grant('b', 1, { from: '2026-03-04T00:00:00Z', until: '2026-03-08T00:00:00Z' }),
      grant('c', 1, { from: '2026-03-08T00:00:00Z', until: '2026-03-09T00:00:00Z' }),
      grant('d', 1, { from: '2026-04-01T00:00:00Z' }),
    ]);
    expect(clusters.map((cluster) => cluster.grants.map((member) => member.id))).toEqual([['a', 'b'], ['c'], ['d']]);
  });
});
