import type { Micros } from '../../shared/quantity.js';
import { hourKey } from './counters.js';
import type { MemberTerms } from './decisions.js';
import type { PostingDoc } from './model.js';
import type { Member } from './plan.js';
import { burnQuantity } from './burns.js';
import type { GrantedCapacity } from './terms.js';

/**
 * Members' terms with their granted capacity (R5: grants count inside their window only),
 * fetched no more than the decision needs.
 *
 * `plugins.granted` is read at each call, not captured: the grants module plugs in after
 * the engine is built (UsageService.useGrantedCapacity).
 */

export interface GrantsPlugin {
  readonly granted: GrantedCapacity;
}

/** Members' terms with granted capacity known at the latest instant (`complete`: at all). */
export interface PreparedTerms {
  terms: MemberTerms[];
  complete: boolean;
  latest: number;
}

/**
 * Members with their terms, and granted capacity (R5) for those at the latest instant:
 * the counter change reports capacity now. Grants at the other instants are fetched by
 * `withAllGrants` only when they can matter, i.e. when usage goes beyond `included`
 * (granted >= 0, so below it every decision is INCLUDED and no limit binds).
 */
export function prepareTerms(
  plugins: GrantsPlugin,
  postings: readonly PostingDoc[],
  members: readonly Member[],
): Map<string, Promise<PreparedTerms>> {
  const byPosting = new Map<string, Member[]>();
  for (const member of members) {
    let group = byPosting.get(member.doc.postingId);
    if (!group) {
      group = [];
      byPosting.set(member.doc.postingId, group);
    }
    group.push(member);
  }
  const prepared = new Map<string, Promise<PreparedTerms>>();
  for (const posting of postings) {
    if (posting.counterId === null) continue;
    const promise = memberTerms(plugins, byPosting.get(posting._id) ?? []);
    promise.catch(() => undefined); // awaited (and rethrown) by the counter update, unless the request died first
    prepared.set(posting._id, promise);
  }
  return prepared;
}

/** Prepared terms for the members that were actually inserted (duplicates drop out). */
export async function narrow(plugins: GrantsPlugin, prepared: PreparedTerms, members: Member[]): Promise<PreparedTerms> {
  if (members.length === prepared.terms.length) return prepared;
  const seqs = new Set(members.map((member) => member.doc.seq));
  const terms = prepared.terms.filter((member) => seqs.has(member.seq));
  const latest = Math.max(...terms.map((member) => member.at.getTime()));
  const atLatest = terms.filter((member) => member.at.getTime() === latest);
  if (latest !== prepared.latest) await fillGrants(plugins, atLatest, latest);
  return { terms, complete: atLatest.length === terms.length, latest };
}

export async function memberTerms(plugins: GrantsPlugin, members: Member[]): Promise<PreparedTerms> {
  const terms = members.map((member) => ({
    seq: member.doc.seq,
    ...burnQuantity(member),
    hourKey: hourKey(member.doc.timestamp),
    at: member.doc.timestamp,
    terms: member.terms,
    granted: 0n,
  }));
  const latest = Math.max(...terms.map((member) => member.at.getTime()));
  const atLatest = terms.filter((member) => member.at.getTime() === latest);
  if (atLatest.length > 0) await fillGrants(plugins, atLatest, latest);
  return { terms, complete: atLatest.length === terms.length, latest };
}

/** Granted capacity at every member's own instant (R5: grants count inside their window only). */
export async function withAllGrants(plugins: GrantsPlugin, terms: MemberTerms[]): Promise<MemberTerms[]> {
  const byInstant = new Map<number, MemberTerms[]>();
  for (const member of terms) {
    const instant = member.at.getTime();
    let group = byInstant.get(instant);
    if (!group) {
      group = [];
      byInstant.set(instant, group);
    }
    group.push(member);
  }
  await Promise.all([...byInstant].map(([instant, group]) => fillGrants(plugins, group, instant)));
  return terms;
}

/** Whether usage from `used` on, counting every member, goes beyond an included amount. */
export function beyondIncluded(terms: readonly MemberTerms[], used: Micros): boolean {
  let running = used;
  for (const member of terms) {
    running += member.quantity;
    if (member.terms.hasAccess && member.terms.included !== null && running > member.terms.included) return true;
  }
  return false;
}

async function fillGrants(plugins: GrantsPlugin, members: MemberTerms[], instant: number): Promise<void> {
  const granted = await plugins.granted(
    members.map((member) => member.terms),
    new Date(instant),
  );
  members.forEach((member, index) => {
    member.granted = granted[index] ?? 0n;
  });
}
