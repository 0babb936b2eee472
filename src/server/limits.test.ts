import { describe, expect, it } from 'vitest';
import { loadConfig } from '../config.js';
import { createLimits, LimitExceededError } from './limits.js';

const limits = () => createLimits({ ...loadConfig({ NODE_ENV: 'test' }).limits, maxTokens: 100 });
const fields = (n: number) => `{ ${Array.from({ length: n }, (_, i) => `f${i}`).join(' ')} }`;

describe('token budget memo', () => {
  it('remembers only accepted texts: a refused text is refused on every attempt, an accepted one stays accepted', () => {
    const { assertTokenBudget } = limits();
    const small = fields(10);
    const large = fields(150);
    for (let attempt = 0; attempt < 3; attempt++) {
      expect(() => assertTokenBudget(small)).not.toThrow();
      expect(() => assertTokenBudget(large)).toThrow(LimitExceededError);
    }
  });

  it('stays exact when many distinct texts churn it past its bound', () => {
    const { assertTokenBudget } = limits();
    for (let i = 0; i < 2_500; i++) {
      const accepted = `{ a${i} }`;
      expect(() => assertTokenBudget(accepted)).not.toThrow();
      // A text differing from an accepted one only by what lies past the budget.
      expect(() => assertTokenBudget(`{ a${i} ${fields(120).slice(1)}`)).toThrow(LimitExceededError);
    }
  });
});
