import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Lru } from './lru.js';

describe('Lru', () => {
  it('keeps at most max entries, dropping the least recently used', () => {
    const lru = new Lru<string, number>(2);
    lru.set('a', 1);
    lru.set('b', 2);
    expect(lru.get('a')).toBe(1); // a is now the most recent
    lru.set('c', 3);
    expect(lru.has('b')).toBe(false);
    expect(lru.get('a')).toBe(1);
    expect(lru.get('c')).toBe(3);
    expect(lru.size).toBe(2);
  });

  it('stores nothing with max 0', () => {
    const lru = new Lru<string, number>(0);
    lru.set('a', 1);
    expect(lru.get('a')).toBeUndefined();
  });

  it('never holds more than max, and holds the last max distinct keys set', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5 }), fc.array(fc.integer({ min: 0, max: 9 }), { maxLength: 50 }), (max, keys) => {
        const lru = new Lru<number, number>(max);
        for (const key of keys) lru.set(key, key);
        expect(lru.size).toBeLessThanOrEqual(max);
        const recent: number[] = [];
        for (const key of [...keys].reverse()) if (!recent.includes(key) && recent.length < max) recent.push(key);
        for (const key of recent) expect(lru.has(key)).toBe(true);
      }),
    );
  });
});
