import { describe, expect, it } from 'vitest';
import { periodContaining } from './periods.js';

const d = (iso: string) => new Date(iso);
const iso = (p: { start: Date; end: Date | null }) => [p.start.toISOString(), p.end?.toISOString() ?? null];

describe('anniversary periods', () => {
  const jan31 = d('2025-01-31T00:00:00.000Z');

  it('clamps a Jan 31 anchor to the end of shorter months without drifting', () => {
    expect(iso(periodContaining(jan31, 'MONTH', d('2025-02-15T00:00:00Z')))).toEqual([
      '2025-01-31T00:00:00.000Z',
      '2025-02-28T00:00:00.000Z',
    ]);
    expect(iso(periodContaining(jan31, 'MONTH', d('2025-03-01T00:00:00Z')))).toEqual([
      '2025-02-28T00:00:00.000Z',
      '2025-03-31T00:00:00.000Z',
    ]);
    expect(iso(periodContaining(jan31, 'MONTH', d('2025-04-30T12:00:00Z')))).toEqual([
      '2025-04-30T00:00:00.000Z',
      '2025-05-31T00:00:00.000Z',
    ]);
  });

  it('uses Feb 29 in a leap year', () => {
    expect(iso(periodContaining(jan31, 'MONTH', d('2028-02-29T23:59:59Z')))).toEqual([
      '2028-02-29T00:00:00.000Z',
      '2028-03-31T00:00:00.000Z',
    ]);
  });

  it('keeps a Feb 29 yearly anchor on Feb 28 in common years and Feb 29 in leap years', () => {
    const leap = d('2024-02-29T10:00:00.000Z');
    expect(iso(periodContaining(leap, 'YEAR', d('2025-06-01T00:00:00Z')))).toEqual([
      '2025-02-28T10:00:00.000Z',
      '2026-02-28T10:00:00.000Z',
    ]);
    expect(iso(periodContaining(leap, 'YEAR', d('2028-03-01T00:00:00Z')))).toEqual([
      '2028-02-29T10:00:00.000Z',
      '2029-02-28T10:00:00.000Z',
    ]);
  });

  it('treats the period end as exclusive', () => {
    const anchor = d('2026-01-15T00:00:00.000Z');
    expect(iso(periodContaining(anchor, 'MONTH', d('2026-02-15T00:00:00.000Z')))[0]).toBe('2026-02-15T00:00:00.000Z');
    expect(iso(periodContaining(anchor, 'MONTH', d('2026-02-14T23:59:59.999Z')))[0]).toBe('2026-01-15T00:00:00.000Z');
  });

  it('handles instants before the anchor, days, weeks and NEVER', () => {
    const anchor = d('2026-03-10T06:00:00.000Z');
    expect(iso(periodContaining(anchor, 'MONTH', d('2026-01-20T00:00:00Z')))).toEqual([
      '2026-01-10T06:00:00.000Z',
      '2026-02-10T06:00:00.000Z',
    ]);
    expect(iso(periodContaining(anchor, 'DAY', d('2026-03-12T05:59:59Z')))).toEqual([
      '2026-03-11T06:00:00.000Z',
      '2026-03-12T06:00:00.000Z',
    ]);
    expect(iso(periodContaining(anchor, 'WEEK', d('2026-03-24T07:00:00Z')))).toEqual([
      '2026-03-24T06:00:00.000Z',
      '2026-03-31T06:00:00.000Z',
    ]);
    expect(iso(periodContaining(anchor, 'NEVER', d('2030-01-01T00:00:00Z')))).toEqual(['2026-03-10T06:00:00.000Z', null]);
  });
});
