import { describe, expect, it } from 'vitest';
import { ALLOW_ALL, authorizePattern } from '../../src/auth/authorizer.js';

describe('subscribe authorization', () => {
  it('allows a pattern the token covers', () => {
    expect(authorizePattern('builds.42.*', ['builds.#'])).toEqual({ ok: true });
    expect(authorizePattern('builds.#', ['builds', 'builds.*.#'])).toEqual({ ok: true });
  });

  it('a forbidden error names a key the pattern can match that the token does not allow', () => {
    expect(authorizePattern('builds.#', ['builds.*'])).toEqual({
      ok: false,
      message: 'token does not allow "builds.#": it can match "builds", which none of the token\'s topics (builds.*) match',
    });
    expect(authorizePattern('#', ['*.#', 'logs.#'])).toEqual({
      ok: false,
      message: 'token does not allow "#": it can match the empty routing key, which none of the token\'s topics (*.#, logs.#) match',
    });
  });

  it('a token without topics may subscribe to nothing', () => {
    expect(authorizePattern('builds.1', [])).toEqual({
      ok: false,
      message: 'token does not allow "builds.1": the token allows no topics',
    });
  });

  it('a refusal lists a long topic list briefly', () => {
    const topics = Array.from({ length: 12 }, (_, i) => `t${i}.#`);
    const result = authorizePattern('other.#', topics);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.message).toContain('(t0.#, t1.#, t2.#, t3.#, t4.# and 7 more)');
  });

  it('with authentication off, every pattern is allowed', () => {
    for (const pattern of ['#', 'a', '*.*.#', 'builds.#.finished']) {
      expect(authorizePattern(pattern, ALLOW_ALL)).toEqual({ ok: true });
    }
    expect(Object.isFrozen(ALLOW_ALL)).toBe(true);
  });
});
