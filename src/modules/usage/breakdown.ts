import type { Collection, Db } from 'mongodb';
import { hourKey } from '../../shared/counter-key.js';
import { BadInputError } from '../../shared/errors.js';
import { toMicros, type Micros } from '../../shared/quantity.js';
import { MAX_FUTURE_SKEW_MS } from './validation.js';
import type { PostingDoc, UsageEventDoc } from './model.js';
import { EVENTS, POSTINGS } from './repository.js';
import { buildUsageSeries, type Granularity, type UsagePointView } from './series.js';

/**
 * `Account.usage(groupBy:)` (R20): a series broken down by one property key. Counters do
 * not know properties, so the breakdown comes from the event ledger: the accepted events
 * of the feature's counters in the range, grouped by `properties[groupBy]`. Bounded: at
 * most MAX_EVENTS events and MAX_GROUPS values, beyond which the caller narrows the range.
 */
export const MAX_EVENTS = 100_000;
export const MAX_GROUPS = 100;

export interface UsageGroupView {
  /** Null: the event had no such property, or not a string. */
  value: string | null;
  total: Micros;
  points: UsagePointView[];
}

export function parseGroupBy(value: string): string {
  if (value.length === 0 || value.length > 64 || value.startsWith('$') || value.includes('.')) {
    throw new BadInputError('groupBy must be a property key of 1-64 characters, not starting with "$" and without ".".', {
      field: 'groupBy',
    });
  }
  return value;
}

export class UsageBreakdown {
  private readonly events: Collection<UsageEventDoc>;
  private readonly postings: Collection<PostingDoc>;

  constructor(db: Db) {
    this.events = db.collection<UsageEventDoc>(EVENTS);
    this.postings = db.collection<PostingDoc>(POSTINGS);
  }

  async groups(counterIds: readonly string[], groupBy: string, granularity: Granularity, from: Date, to: Date): Promise<UsageGroupView[]> {
    if (counterIds.length === 0) return [];
    const tooMany = () =>
      new BadInputError(`usage: more than ${MAX_EVENTS} events in the range to group; narrow the range.`, { field: 'groupBy' });
    // An event's timestamp is at most 5 minutes after its request was received (R8).
    const postings = await this.postings
      .find(
        { counterId: { $in: [...counterIds] }, state: 'POSTED', receivedAt: { $gte: new Date(from.getTime() - MAX_FUTURE_SKEW_MS) } },
        { projection: { outcomes: 1 } },
      )
      .limit(MAX_EVENTS + 1)
      .toArray();
    if (postings.length > MAX_EVENTS) throw tooMany();
    const accepted = new Map(
      postings.map((posting) => [posting._id, (posting.outcomes ?? []).filter((run) => run.outcome === 'ACCEPTED')] as const),
    );
    const ids = [...accepted].filter(([, runs]) => runs.length > 0).map(([id]) => id);
    if (ids.length === 0) return [];
    const events = await this.events
      .find(
        { postingId: { $in: ids }, timestamp: { $gte: from, $lt: to } },
        { projection: { postingId: 1, seq: 1, quantity: 1, timestamp: 1, [`properties.${groupBy}`]: 1 } },
      )
      .limit(MAX_EVENTS + 1)
      .toArray();
    if (events.length > MAX_EVENTS) throw tooMany();
    const hoursByValue = new Map<string | null, Record<string, Micros>>();
    for (const event of events) {
      const runs = accepted.get(event.postingId) ?? [];
      if (!runs.some((run) => run.first <= event.seq && event.seq <= run.last)) continue;
      const raw = event.properties?.[groupBy];
      const value = typeof raw === 'string' ? raw : null;
      let hours = hoursByValue.get(value);
      if (!hours) {
        if (hoursByValue.size >= MAX_GROUPS) {
          throw new BadInputError(`usage: "${groupBy}" has more than ${MAX_GROUPS} values in the range; narrow the range.`, {
            field: 'groupBy',
          });
        }
        hours = {};
        hoursByValue.set(value, hours);
      }
      const bucket = hourKey(event.timestamp);
      hours[bucket] = (hours[bucket] ?? 0n) + toMicros(event.quantity);
    }
    const groups = [...hoursByValue].map(([value, hours]) => {
      const series = buildUsageSeries([{ hours }], '', granularity, from, to);
      return { value, total: series.total, points: series.points };
    });
    return groups.sort((a, b) => (a.total === b.total ? String(a.value).localeCompare(String(b.value)) : a.total > b.total ? -1 : 1));
  }
}
