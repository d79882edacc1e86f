/**
 * Routing keys and patterns: what is accepted before anything reaches the
 * broker, and topic matching with RabbitMQ's semantics, checked against a
 * table and against an independent regular-expression translation.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ROUTING_CASES } from './routing-cases.js';
import {
  canonicalPattern,
  compilePattern,
  MAX_PATTERN_HASHES,
  patternCostError,
  isPattern,
  isRoutingKey,
  MAX_KEY_BYTES,
  patternError,
  routingKeyError,
  topicMatches,
} from '../src/index.js';

const words = (n: number, word = 'a') => Array.from({ length: n }, () => word).join('.');
const ofLength = (bytes: number) => `${'k'.repeat(bytes - 2)}.k`;

describe('a routing key is words of [A-Za-z0-9_:-] joined by dots, at most 255 bytes', () => {
  it.each([
    'a',
    'builds.42.finished',
    'builds.42.steps.3.started',
    'Az09_:-.x',
    'urn:build:42.log-line_7',
    ofLength(MAX_KEY_BYTES),
    words(128), // the most words a key can have: 128 words, 127 dots
  ])('%j is a valid key', (key) => {
    expect(routingKeyError(key)).toBeNull();
    expect(isRoutingKey(key)).toBe(true);
  });

  it.each<[unknown, string | RegExp]>([
    ['', 'a routing key must not be empty'],
    ['a..b', 'routing key "a..b" has an empty word at position 2 (two dots, or a leading or trailing dot)'],
    ['.a', /empty word at position 1/],
    ['a.', /empty word at position 2/],
    ['.', /empty word at position 1/],
    ['a.*', /invalid word "\*".*wildcards are allowed in patterns, not in routing keys/],
    ['#', /invalid word "#"/],
    ['a.b*', /invalid word "b\*"/],
    ['a b', /invalid word "a b"/],
    ['a/b', /invalid word "a\/b"/],
    ['bü.1', /invalid word "bü"/],
    ['日本', /invalid word "日本"/],
    [ofLength(MAX_KEY_BYTES + 1), 'a routing key must be at most 255 bytes, got 256 characters'],
    ['x'.repeat(300), 'a routing key must be at most 255 bytes, got 300 characters'],
    [42, 'a routing key must be a string, got number'],
    [null, 'a routing key must be a string, got null'],
    [undefined, 'a routing key must be a string, got undefined'],
    [{}, 'a routing key must be a string, got object'],
  ])('%j is refused: %s', (key, why) => {
    const error = routingKeyError(key);
    expect(error).not.toBeNull();
    if (typeof why === 'string') expect(error).toBe(why);
    else expect(error).toMatch(why);
    expect(isRoutingKey(key)).toBe(false);
  });
});

describe('a pattern is a key whose words may also be * or #', () => {
  it.each(['#', '*', 'builds.#', 'builds.*.finished', '#.finished', 'a.#.b', '#.#', 'a.#.#', '*.#', '*.*.*', ofLength(MAX_KEY_BYTES)])(
    '%j is a valid pattern',
    (pattern) => {
      expect(patternError(pattern)).toBeNull();
      expect(isPattern(pattern)).toBe(true);
    },
  );

  it.each<[unknown, string | RegExp]>([
    ['', 'a pattern must not be empty'],
    ['a..b', 'pattern "a..b" has an empty word at position 2 (two dots, or a leading or trailing dot)'],
    ['.#', /empty word at position 1/],
    ['#.', /empty word at position 2/],
    ['a.b*', 'pattern "a.b*" has an invalid word "b*": use letters, digits, "_", ":" and "-"; `*` and `#` must stand alone as a whole word'],
    ['*a', /invalid word "\*a"/],
    ['a#', /invalid word "a#"/],
    ['##', /invalid word "##"/],
    ['**', /invalid word "\*\*"/],
    ['builds.>', /invalid word ">"/],
    ['bü.#', /invalid word "bü"/],
    ['x'.repeat(300), 'a pattern must be at most 255 bytes, got 300 characters'],
    [42, 'a pattern must be a string, got number'],
    [null, 'a pattern must be a string, got null'],
    [['a'], 'a pattern must be a string, got object'],
  ])('%j is refused: %s', (pattern, why) => {
    const error = patternError(pattern);
    if (typeof why === 'string') expect(error).toBe(why);
    else expect(error).toMatch(why);
    expect(isPattern(pattern)).toBe(false);
  });
});


describe('topic matching follows RabbitMQ', () => {
  it.each(ROUTING_CASES)('%s routes %s: %s', (pattern, key, routed) => {
    expect(topicMatches(pattern, key)).toBe(routed);
    expect(compilePattern(pattern)(key)).toBe(routed);
  });

  it('a long run of # cannot cause exponential work', () => {
    const pattern = words(60, '#') + '.b';
    const key = words(100);
    const started = performance.now();
    expect(topicMatches(pattern, key)).toBe(false);
    expect(compilePattern(pattern)(key)).toBe(false);
    expect(performance.now() - started).toBeLessThan(100);
  });
});

/**
 * An independent oracle: the pattern as a regular expression over "." + key.
 * Each word becomes "\.word", "\.[^.]+" for `*`, "(?:\.[^.]+)*" for `#`.
 */
function regexOracle(pattern: string, key: string): boolean {
  const parts = pattern.split('.').map((w) => (w === '#' ? '(?:\\.[^.]+)*' : w === '*' ? '\\.[^.]+' : `\\.${w.replace(/[-:]/g, '\\$&')}`));
  return new RegExp(`^${parts.join('')}$`).test(`.${key}`);
}

const joinWords = (arb: fc.Arbitrary<string>, maxLength: number) =>
  fc.array(arb, { minLength: 1, maxLength }).map((ws) => ws.join('.'));

describe('topic matching agrees with a regular-expression oracle', () => {
  it('over a small alphabet, where collisions are frequent', () => {
    const pattern = joinWords(fc.constantFrom('a', 'b', '*', '#'), 6);
    const key = joinWords(fc.constantFrom('a', 'b', 'c'), 7);
    fc.assert(
      fc.property(pattern, key, (p, k) => {
        const expected = regexOracle(p, k);
        expect(topicMatches(p, k)).toBe(expected);
        expect(compilePattern(p)(k)).toBe(expected);
      }),
      { numRuns: 2000 },
    );
  });

  it('over realistic words', () => {
    const word = fc.stringMatching(/^[A-Za-z0-9_:-]{1,4}$/);
    const pattern = joinWords(fc.oneof(word, fc.constant('*'), fc.constant('#')), 5);
    fc.assert(
      fc.property(pattern, joinWords(word, 6), (p, k) => {
        expect(isPattern(p)).toBe(true);
        expect(isRoutingKey(k)).toBe(true);
        const expected = regexOracle(p, k);
        expect(topicMatches(p, k)).toBe(expected);
        expect(compilePattern(p)(k)).toBe(expected);
      }),
      { numRuns: 500 },
    );
  });

  it('a key is routed to the pattern that is itself', () => {
    fc.assert(
      fc.property(joinWords(fc.stringMatching(/^[A-Za-z0-9_:-]{1,6}$/), 8), (key) => {
        expect(topicMatches(key, key)).toBe(true);
        expect(compilePattern(key)(key)).toBe(true);
        expect(topicMatches('#', key)).toBe(true);
      }),
    );
  });
});

describe('canonical patterns: the same keys, the least work for the broker', () => {
  it.each([
    ['#.#', '#'],
    ['builds.#.#.#.#.#.#.#.#', 'builds.#'],
    ['#.*', '*.#'],
    ['*.#.*', '*.*.#'],
    ['a.#.*.#.b', 'a.*.#.b'],
    ['a.*.*.b', 'a.*.*.b'],
    ['#.a.#', '#.a.#'],
    ['builds.*.finished', 'builds.*.finished'],
  ])('%s becomes %s', (pattern, canonical) => {
    expect(canonicalPattern(pattern)).toBe(canonical);
  });

  it('matches exactly the keys the original matches, and is its own canonical form', () => {
    const pattern = joinWords(fc.constantFrom('a', 'b', '*', '#'), 8);
    const key = joinWords(fc.constantFrom('a', 'b', 'c'), 9);
    fc.assert(
      fc.property(pattern, key, (p, k) => {
        const canonical = canonicalPattern(p);
        expect(topicMatches(canonical, k)).toBe(topicMatches(p, k));
        expect(canonicalPattern(canonical)).toBe(canonical);
      }),
      { numRuns: 20_000 },
    );
  });

  it(`refuses more than ${MAX_PATTERN_HASHES} "#" words once canonical`, () => {
    expect(patternCostError(canonicalPattern('a.#.#.#.#'))).toBeNull();
    expect(patternCostError('#.error.#')).toBeNull();
    expect(patternCostError('#.a.#.b.#')).toMatch(/has 3 "#" words; at most 2 are allowed/);
  });
});
