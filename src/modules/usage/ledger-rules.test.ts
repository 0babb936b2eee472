import { describe, expect, it } from 'vitest';
import { BadInputError } from '../../shared/errors.js';
import { canonicalJson, eventId, payloadSignature } from './idempotency.js';
import { buildUsageSeries, bucketStart } from './series.js';
import { replayableAuditId } from './repository.js';
import { judge, postingIdOf } from './sweeper.js';
import { validateUsageEvent } from './validation.js';

describe('idempotency keys and payloads (R7)', () => {
  it('keys an event by account and idempotency key only, unambiguously', () => {
    expect(eventId('a|b', 'c')).not.toBe(eventId('a', 'b|c'));
    expect(eventId('acct', 'k1')).toBe('["acct","k1"]');
  });

  it('treats payloads as equal regardless of property key order, and the timestamp only when the client sent it', () => {
    const base = {
      feature: 'api_calls',
      quantity: 1_500_000n,
      clientTimestamp: false,
      timestamp: new Date(1),
      properties: { b: 1, a: { d: [1, { f: 2, e: 3 }], c: null } },
    };
    expect(payloadSignature(base)).toBe(
      payloadSignature({ ...base, timestamp: new Date(2), properties: { a: { c: null, d: [1, { e: 3, f: 2 }] }, b: 1 } }),
    );
    expect(payloadSignature({ ...base, clientTimestamp: true })).not.toBe(
      payloadSignature({ ...base, clientTimestamp: true, timestamp: new Date(2) }),
    );
    expect(payloadSignature(base)).not.toBe(payloadSignature({ ...base, quantity: 1_500_001n }));
    expect(canonicalJson({ z: 1, a: undefined })).toBe('{"z":1}');
  });
});

describe('validateUsageEvent', () => {
  const context = { now: new Date('2026-06-01T12:00:00Z'), retentionDays: 400 };
  const valid = { accountId: 'acct', feature: 'api_calls', quantity: '0.000001', idempotencyKey: 'k-1' };

  it('parses exact micro-units and defaults the timestamp to the receipt time', () => {
    expect(validateUsageEvent(valid, context)).toMatchObject({
      quantity: 1n,
      timestamp: context.now,
      clientTimestamp: false,
      properties: null,
    });
  });

  it('accepts a timestamp exactly 5 minutes ahead and exactly at the retention edge, not beyond', () => {
    const ahead = new Date(context.now.getTime() + 5 * 60_000);
    expect(validateUsageEvent({ ...valid, timestamp: ahead }, context).timestamp).toBe(ahead);
    expect(() => validateUsageEvent({ ...valid, timestamp: new Date(ahead.getTime() + 1) }, context)).toThrow(BadInputError);
    const edge = new Date(context.now.getTime() - 400 * 86_400_000);
    expect(validateUsageEvent({ ...valid, timestamp: edge }, context).timestamp).toBe(edge);
    expect(() => validateUsageEvent({ ...valid, timestamp: new Date(edge.getTime() - 1) }, context)).toThrow(/retention/);
  });

  it('names the event of a batch that is wrong', () => {
    expect(() => validateUsageEvent({ ...valid, quantity: '0' }, context, 17)).toThrow(/^events\[17\]: quantity must be greater than zero/);
    // R16: the sign is judged once the feature's type is known (gauges take signed deltas;
    // plan.ts refuses a negative quantity on a METERED feature, naming the event too).
    expect(validateUsageEvent({ ...valid, quantity: '-1' }, context, 17).quantity).toBe(-1_000_000n);
  });

  it('refuses properties that are not a JSON object of safe keys', () => {
    expect(() => validateUsageEvent({ ...valid, properties: [1, 2] }, context)).toThrow(/JSON object/);
    expect(() => validateUsageEvent({ ...valid, properties: { a: { b: { $ne: 1 } } } }, context)).toThrow(/properties\.a\.b/);
    expect(() => validateUsageEvent({ ...valid, properties: { big: 'x'.repeat(9_000) } }, context)).toThrow(/bytes/);
  });
});

describe('usage series', () => {
  it('buckets UTC hours into days and months densely', () => {
    const counters: Array<{ hours: Record<string, bigint> }> = [
      { hours: { '2026013023': 1n, '2026013100': 2n, '2026020110': 3n } },
      { hours: { '2026020111': 4n } },
    ];
    const daily = buildUsageSeries(counters, 'f', 'DAY', new Date('2026-01-30T05:00:00Z'), new Date('2026-02-02T00:00:00Z'));
    expect(daily.points.map((point) => [point.start.toISOString().slice(0, 10), point.used])).toEqual([
      ['2026-01-30', 1n],
      ['2026-01-31', 2n],
      ['2026-02-01', 7n],
    ]);
    expect(daily.total).toBe(10n);
    const monthly = buildUsageSeries(counters, 'f', 'MONTH', new Date('2026-01-15T00:00:00Z'), new Date('2026-03-01T00:00:00Z'));
    expect(monthly.points.map((point) => point.used)).toEqual([3n, 7n]);
    expect(bucketStart(new Date('2026-02-28T23:59:59Z'), 'MONTH').toISOString()).toBe('2026-02-01T00:00:00.000Z');
  });

  it('refuses an empty or oversized range', () => {
    const at = new Date('2026-01-01T00:00:00Z');
    expect(() => buildUsageSeries([], 'f', 'DAY', at, at)).toThrow(BadInputError);
    expect(() => buildUsageSeries([], 'f', 'HOUR', at, new Date('2028-01-01T00:00:00Z'))).toThrow(/more than 10000/);
  });
});

describe('pending entries', () => {
  it('are settled when their posting ended with them, stale when it ended otherwise, in flight while reserved', () => {
    const entry = { id: 'req-1:0#2', at: new Date(), inc: 1n, hours: {}, rejected: [] };
    expect(postingIdOf(entry)).toBe('req-1:0');
    expect(judge(entry, { state: 'POSTED', appliedAs: 'req-1:0#2' })).toBe('settled');
    expect(judge(entry, { state: 'POSTED', appliedAs: 'req-1:0#3' })).toBe('stale');
    expect(judge(entry, { state: 'POSTED', appliedAs: null })).toBe('stale');
    expect(judge(entry, { state: 'RESERVED' })).toBe('in-flight');
    expect(judge(entry, undefined)).toBe('in-flight');
  });
});

describe('replay-safe audit ids', () => {
  it('are the same for the same step, and sort by time to the millisecond', () => {
    const at = new Date('2026-11-24T10:00:00.998Z');
    expect(replayableAuditId(at, 'pst_1', 'usage.accepted').equals(replayableAuditId(at, 'pst_1', 'usage.accepted'))).toBe(true);
    expect(replayableAuditId(at, 'pst_1', 'usage.accepted').equals(replayableAuditId(at, 'pst_1', 'usage.rejected'))).toBe(false);
    // Later within one second, and across the second boundary, whatever the hashes.
    const instants = ['2026-11-24T10:00:00.001Z', '2026-11-24T10:00:00.002Z', '2026-11-24T10:00:00.999Z', '2026-11-24T10:00:01.000Z'];
    for (const parts of [['pst_a'], ['pst_z'], ['pst_m', 'x']]) {
      const hex = instants.map((instant, i) => replayableAuditId(new Date(instant), ...parts, String(i)).toHexString());
      expect([...hex].sort()).toEqual(hex);
    }
    expect(replayableAuditId(at, 'pst_1').getTimestamp().getTime()).toBe(Date.parse('2026-11-24T10:00:00.000Z'));
  });
});
