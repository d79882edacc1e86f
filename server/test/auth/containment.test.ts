/**
 * Pattern containment decides what a token may subscribe to, so it is checked
 * two ways: a table of cases a reader can audit, and a property test that
 * compares it with brute force over every key up to a length at which brute
 * force is exact.
 */
import { topicMatches } from '@topicgate/shared';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkCoverage, patternCovered, uncoveredExample } from '../../src/auth/containment.js';

/** [pattern, the token's topics, covered?, a shortest uncovered key when not] */
const CASES: Array<[string, string[], boolean, string?]> = [
  // The examples of docs/protocol.md §10.3.
  ['builds.*.finished', ['builds.#'], true],
  ['builds.#', ['builds.*'], false, 'builds'],
  ['builds.*', ['builds.#'], true],
  // Exact keys and literals.
  ['builds.42.finished', ['builds.42.finished'], true],
  ['builds.42.finished', ['builds.43.finished'], false, 'builds.42.finished'],
  ['builds.42', ['builds'], false, 'builds.42'],
  ['builds', ['builds.42'], false, 'builds'],
  // Containment is about words, never string prefixes.
  ['builds2.#', ['builds.#'], false, 'builds2'],
  ['builds.#', ['build.#'], false, 'builds'],
  // `#` allows everything, and only `#` (or `#.#`…) allows `#`.
  ['#', ['#'], true],
  ['a.*.#', ['#'], true],
  ['*', ['#'], true],
  ['#', ['#.#'], true],
  ['#.#', ['#'], true],
  ['#', ['a.#', 'b.#'], false, ''],
  // Runs of `#` match what one `#` matches.
  ['a.#.#', ['a.#'], true],
  ['a.#', ['a.#.#'], true],
  ['a.#.#.b', ['a.#.b'], true],
  // `*.#` is "one or more words"; `#` also matches the empty key, which RabbitMQ routes to `#`.
  ['*.#', ['#'], true],
  ['#', ['*.#'], false, ''],
  ['*.#', ['#.*'], true],
  ['#.*', ['*.#'], true],
  ['*.#.*', ['*.*.#'], true],
  ['*.#', ['*.*.#'], false, 'x'],
  // `*` is exactly one word; `#` is any number.
  ['a.*.b', ['a.#.b'], true],
  ['a.#.b', ['a.*.b'], false, 'a.b'],
  ['a.#', ['a.*'], false, 'a'],
  ['a.*', ['a.b'], false, 'a.x'],
  ['*', ['a', 'b'], false, 'x'],
  // Only the union covers: no single topic does.
  ['a.#', ['a', 'a.*.#'], true],
  ['a.#', ['a.*.#'], false, 'a'],
  ['a.#', ['a', 'a.*'], false, 'a.x.y'],
  ['*', ['a', '*.#'], true],
  ['#.a', ['a', '*.#.a'], true],
  ['#.a', ['*.a'], false, 'a'],
  ['a.#', ['a', 'a.b.#', 'a.*', 'a.*.*.#'], true],
  ['a.#', ['a', 'a.b.#', 'a.*.*.#'], false, 'a.x'],
  ['*.*', ['a.*', '*.a', 'b.b'], false, 'x.y'],
  ['#', ['#.a', '#.b'], false, ''],
  ['*.#', ['#.a', '#.b', '#.*.*', 'c'], false, 'x'],
  // A token with no topics allows nothing.
  ['builds.1', [], false, 'builds.1'],
  ['#', [], false, ''],
];

describe('a subscription pattern is allowed only when the token covers every key it can match', () => {
  it.each(CASES)('%s with topics %j: covered = %s', (pattern, allowed, covered, example) => {
    expect(patternCovered(pattern, allowed)).toBe(covered);
    expect(uncoveredExample(pattern, allowed)).toBe(covered ? null : example);
  });

  it('names words no topic mentions with fresh words that no pattern uses', () => {
    expect(uncoveredExample('x.*.*', ['x.y.#', 'x.z.#'])).toBe('x.x2.y2');
    expect(uncoveredExample('builds.#', ['builds.*.finished'])).toBe('builds');
    expect(uncoveredExample('builds.*.#', ['builds.*.finished'])).toBe('builds.x');
  });

  it('refuses rather than answers when the search exceeds its bound', () => {
    // Covered, but proving it takes more than one explored state.
    expect(checkCoverage('a.#', ['a', 'a.*.#'])).toEqual({ verdict: 'covered' });
    expect(checkCoverage('a.#', ['a', 'a.*.#'], { maxStates: 1 })).toEqual({ verdict: 'too_complex' });
  });

  it('answers quickly for a token with many topics', () => {
    const topics = Array.from({ length: 200 }, (_, i) => `tenant${i}.builds.*.#`);
    topics.push('#.audit.*', 'logs.*.append', '*.*.steps.#');
    const started = performance.now();
    expect(patternCovered('tenant7.builds.42.#', topics)).toBe(true);
    expect(patternCovered('tenant7.#', topics)).toBe(false);
    expect(patternCovered('#.steps.#', topics)).toBe(false);
    expect(patternCovered('*.*.steps.*.started', topics)).toBe(true);
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('handles the longest patterns a key allows', () => {
    const long = Array.from({ length: 128 }, () => 'a').join('.'); // 255 bytes
    expect(patternCovered(long, ['#.a'])).toBe(true);
    expect(patternCovered(long.replace(/a/g, '*'), ['a.#'])).toBe(false);
    expect(patternCovered(long.replace(/a/g, '#'), ['#'])).toBe(true);
  });
});

// ---------------------------------------------------------------------------
// Brute force. Patterns use the literal words a and b; keys use a, b and z,
// where z stands for every word that no pattern mentions.
//
// Why enumerating keys up to `exactBound` words is exact. Suppose some key is
// matched by the pattern P and by no allowed pattern.
// (1) Replace every word that P matches with `*` or `#` by z. P still matches;
//     an allowed pattern matching the new key would have matched the old one
//     (z can only be consumed by its `*` or `#`, which accept anything), so it
//     is still a counterexample. Its words are P's literals and z runs, one run
//     per maximal run of wildcards in P.
// (2) Let M be the largest number of non-`#` words in an allowed pattern. If a
//     z run has k >= M + 1 words, an allowed pattern matches the key with k or
//     with k + 1 there alike: its non-`#` words cover at most M of the run, so
//     some `#` covers a z of the run and can absorb one z more or less. So a z
//     run that contains a word P matched with `#` and is longer than M + 1 can
//     lose that word, and stay a counterexample that P matches.
// So if there is a counterexample, there is one with at most
//   (literals of P) + sum over P's wildcard runs of (run has `#` ? max(M + 1, stars) : stars)
// words, over a, b and z. The empty key (zero words; RabbitMQ routes "" to `#`
// but not to `*`) is checked on its own.
// ---------------------------------------------------------------------------

const KEY_WORDS = ['a', 'b', 'z'];

function exactBound(pattern: string, allowed: readonly string[]): number {
  const m = Math.max(0, ...allowed.map((p) => p.split('.').filter((w) => w !== '#').length));
  let total = 0;
  let stars = 0;
  let hashes = 0;
  const endRun = () => {
    total += hashes > 0 ? Math.max(m + 1, stars) : stars;
    stars = hashes = 0;
  };
  for (const word of pattern.split('.')) {
    if (word === '*') stars++;
    else if (word === '#') hashes++;
    else {
      endRun();
      total++;
    }
  }
  endRun();
  return total;
}

const keysByLength: string[][] = [['']]; // length 0: the empty key, handled by `routes`
function keysOfLength(n: number): string[] {
  while (keysByLength.length <= n) {
    const shorter = keysByLength[keysByLength.length - 1]!;
    keysByLength.push(KEY_WORDS.flatMap((w) => shorter.map((k) => (k === '' ? w : `${k}.${w}`))));
  }
  return keysByLength[n]!;
}

/** RabbitMQ routing, with "" as the empty key (zero words), as the broker splits it. */
function routes(pattern: string, key: string): boolean {
  return key === '' ? pattern.split('.').every((w) => w === '#') : topicMatches(pattern, key);
}

function bruteForceCovered(pattern: string, allowed: readonly string[]): boolean {
  const bound = exactBound(pattern, allowed);
  for (let n = 0; n <= bound; n++) {
    for (const key of keysOfLength(n)) {
      if (routes(pattern, key) && !allowed.some((a) => routes(a, key))) return false;
    }
  }
  return true;
}

const patternOf = (words: fc.Arbitrary<string>, maxLength: number) =>
  fc.array(words, { minLength: 1, maxLength }).map((ws) => ws.join('.'));
const smallPattern = patternOf(fc.constantFrom('a', 'b', '*', '#'), 3);
const tokenTopics = fc.array(smallPattern, { maxLength: 3 });

describe('containment agrees with brute force over every key that matters', () => {
  it('covered exactly when every key the pattern matches is matched by a topic', () => {
    fc.assert(
      fc.property(patternOf(fc.constantFrom('a', 'b', '*', '#'), 4), tokenTopics, (pattern, allowed) => {
        expect(patternCovered(pattern, allowed)).toBe(bruteForceCovered(pattern, allowed));
      }),
      { numRuns: 400 },
    );
  });

  it('an uncovered example is a key the pattern matches and no topic does, and is a shortest one', () => {
    // x and y appear as literals too, so fresh names must avoid them.
    const word = fc.constantFrom('a', 'x', 'y', '*', '#');
    fc.assert(
      fc.property(patternOf(word, 4), fc.array(patternOf(word, 3), { maxLength: 3 }), (pattern, allowed) => {
        const example = uncoveredExample(pattern, allowed);
        expect(example === null).toBe(patternCovered(pattern, allowed));
        if (example === null) return;
        expect(routes(pattern, example)).toBe(true);
        expect(allowed.some((a) => routes(a, example))).toBe(false);
        // No shorter key over the pattern's literals and one other word is a counterexample.
        const length = example === '' ? 0 : example.split('.').length;
        const words = ['a', 'x', 'y', 'other'];
        const shorter = (n: number): string[] =>
          n === 0 ? [''] : shorter(n - 1).flatMap((k) => words.map((w) => (k === '' ? w : `${k}.${w}`)));
        for (let n = 0; n < length; n++) {
          for (const key of shorter(n)) {
            expect(routes(pattern, key) && !allowed.some((a) => routes(a, key)), `shorter: "${key}"`).toBe(false);
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it('the token naming the pattern itself, or adding topics, never takes access away', () => {
    fc.assert(
      fc.property(smallPattern, tokenTopics, tokenTopics, (pattern, allowed, more) => {
        expect(patternCovered(pattern, [...allowed, pattern])).toBe(true);
        if (patternCovered(pattern, allowed)) expect(patternCovered(pattern, [...allowed, ...more])).toBe(true);
      }),
    );
  });
});
