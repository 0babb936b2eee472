import { toMicros, type Micros } from '../../shared/quantity.js';
import { creditsFor } from '../entitlements/index.js';
import type { MemberDecision, MemberTerms } from './decisions.js';
import type { PendingEntry } from './model.js';
import type { Member } from './plan.js';

/**
 * Credit burns (R14). An event of a burning feature posts on its credit feature's counter:
 * the counter counts credits (quantity × perUnit, rounded up to the micro-credit) under the
 * credit feature's HARD guard, and the burning feature's own units ride in the same update
 * as `burns.<feature>` (PendingEntry.burn), so exactly-once and recovery are the posting's.
 */

/** What the counter counts for a member: its quantity, or the credits it burns with its own units. */
export function burnQuantity(member: Member): { quantity: Micros; units?: Micros } {
  const quantity = toMicros(member.doc.quantity);
  const burn = member.terms.burn;
  return burn ? { quantity: creditsFor(quantity, burn.perUnit), units: quantity } : { quantity };
}

/** The burning feature's own units accepted by a posting, by hour; undefined when nothing burns. */
export function burnOf(terms: readonly MemberTerms[], decisions: readonly MemberDecision[]): PendingEntry['burn'] {
  const feature = terms.find((member) => member.terms.burn)?.terms.burn?.feature;
  if (feature === undefined) return undefined;
  const accepted = new Set(decisions.filter((decision) => decision.outcome === 'ACCEPTED').map((decision) => decision.seq));
  const hours: Record<string, Micros> = {};
  let inc = 0n;
  for (const member of terms) {
    if (!accepted.has(member.seq) || member.units === undefined) continue;
    inc += member.units;
    hours[member.hourKey] = (hours[member.hourKey] ?? 0n) + member.units;
  }
  return { feature, inc, hours };
}
