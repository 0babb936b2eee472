import type { CounterReader } from '../usage/index.js';
import type { InvoiceView, PoolMemberUsage } from './model.js';

/**
 * R13: a pool counter holds its members' shares beside `used`; the owner's invoice lists
 * each account's units on the pooled feature's usage and OVERAGE line (the owner's own
 * part is `used` minus the members'). The pool is rated once, here. Members' invoices
 * never see these units: they were never counted on the members' counters.
 */
export async function withPoolMembers<T extends Pick<InvoiceView, 'lines' | 'usage'>>(
  counters: Partial<Pick<CounterReader, 'sharesOf'>>,
  ownerId: string,
  rated: T,
): Promise<T> {
  if (!counters.sharesOf || rated.usage.length === 0) return rated;
  const shares = await counters.sharesOf(rated.usage.map((usage) => usage.counterId));
  if (shares.size === 0) return rated;
  const membersOf = new Map<string, PoolMemberUsage[]>();
  const usage = rated.usage.map((entry) => {
    const byMember = shares.get(entry.counterId);
    if (!byMember) return entry;
    const drawn = [...byMember].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const own = entry.used - drawn.reduce((sum, [, quantity]) => sum + quantity, 0n);
    const members = [{ accountId: ownerId, quantity: own }, ...drawn.map(([accountId, quantity]) => ({ accountId, quantity }))];
    membersOf.set(`${entry.feature}|${entry.periodStart.getTime()}`, members);
    return { ...entry, members };
  });
  const lines = rated.lines.map((line) => {
    const members = line.kind === 'OVERAGE' && line.feature ? membersOf.get(`${line.feature}|${line.periodStart.getTime()}`) : undefined;
    return members ? { ...line, members } : line;
  });
  return { ...rated, usage, lines };
}
