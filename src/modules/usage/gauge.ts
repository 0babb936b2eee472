import { periodKey } from '../../shared/counter-key.js';
import { maxMicros, type Micros } from '../../shared/quantity.js';
import { accessReason, type MemberDecision, type MemberTerms } from './decisions.js';
import type { DecisionReason } from './model.js';
import type { Decide } from './terms.js';

/**
 * R16: how a posting's events change a GAUGE's level, in order, from the level observed.
 * Pure: the caller makes it atomic by compare-and-set on the level document's `seq`, so
 * the decision rests on the exact level and not on a bound of it.
 *
 * - a delta (recordUsage) moves the level by its signed quantity; `set` members
 *   (setUsage) move it to their quantity, i.e. by (quantity − level);
 * - an increase is decided like usage (R6): HARD refuses a level above capacity + grace
 *   (QUOTA_EXCEEDED);
 * - a decrease is always allowed, except below zero: refused (LEVEL_BELOW_ZERO), not
 *   clamped, so the level stays the sum of accepted changes;
 * - per period of the events' timestamps: the highest level reached there (`peaks`,
 *   counting the level carried in) and the level after its last change (`levels`).
 */
export interface GaugeDecision {
  decisions: MemberDecision[];
  /** The net change of the accepted events. */
  inc: Micros;
  /** Net change per hour bucket (signed). */
  hours: Record<string, Micros>;
  after: Micros;
  /** periodKey → highest level in that period from this posting (for `$max`). */
  peaks: Record<string, Micros>;
  /** periodKey → level after this posting's last change in that period (for `$set`). */
  levels: Record<string, Micros>;
}

export function decideGauge(members: readonly MemberTerms[], sets: ReadonlySet<number>, level: Micros, decide: Decide): GaugeDecision {
  const decisions: MemberDecision[] = [];
  const hours: Record<string, Micros> = {};
  const peaks: Record<string, Micros> = {};
  const levels: Record<string, Micros> = {};
  let running = level;
  const refuse = (seq: number, reason: DecisionReason) => decisions.push({ seq, outcome: 'REJECTED', reason });
  for (const member of members) {
    if (!member.terms.hasAccess || member.terms.period === null) {
      refuse(member.seq, accessReason(member.terms));
      continue;
    }
    const delta = sets.has(member.seq) ? member.quantity - running : member.quantity;
    const next = running + delta;
    if (next < 0n) {
      refuse(member.seq, 'LEVEL_BELOW_ZERO');
      continue;
    }
    let reason: DecisionReason;
    if (delta > 0n) {
      const decision = decide(member.terms, running, member.granted, delta);
      if (!decision.allowed) {
        refuse(member.seq, decision.reason);
        continue;
      }
      reason = decision.reason;
    } else {
      // Decreases always pass; the reason says where the new level stands.
      const standing = decide(member.terms, 0n, member.granted, next);
      reason = standing.allowed ? standing.reason : 'OVERAGE';
    }
    const key = periodKey(member.terms.period.start);
    peaks[key] = maxMicros(peaks[key] ?? running, maxMicros(running, next));
    levels[key] = next;
    if (delta !== 0n) hours[member.hourKey] = (hours[member.hourKey] ?? 0n) + delta;
    running = next;
    decisions.push({ seq: member.seq, outcome: 'ACCEPTED', reason });
  }
  return { decisions, inc: running - level, hours, after: running, peaks, levels };
}

/**
 * A gauge's peak in a period (R16, rating): the highest level recorded there, or, when
 * nothing changed in it, the level carried in from the latest earlier period that has one.
 */
export function peakIn(
  doc: { peaks?: Record<string, unknown>; levels?: Record<string, unknown> } | null | undefined,
  periodStart: Date,
  toMicros: (value: unknown) => Micros,
): Micros {
  const key = periodKey(periodStart);
  if (doc?.peaks?.[key] !== undefined) return toMicros(doc.peaks[key]);
  const earlier = Object.keys(doc?.levels ?? {})
    .filter((candidate) => Number(candidate.slice(1)) < periodStart.getTime())
    .sort((a, b) => Number(a.slice(1)) - Number(b.slice(1)));
  const last = earlier.at(-1);
  return last === undefined ? 0n : toMicros(doc!.levels![last]);
}
