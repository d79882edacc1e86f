/**
 * Pattern containment: may a token that allows the patterns `allowed` subscribe
 * to `pattern`? Only if every routing key `pattern` can match is matched by at
 * least one allowed pattern (docs/protocol.md §10.3). This is the heart of the
 * security model, so the rule here is: never say "covered" without a proof.
 * Answering "not covered" for a pattern that is in fact covered costs a user a
 * refused subscription; the opposite leaks messages.
 *
 * How it works. A topic pattern is a small automaton over *words*: a literal
 * word consumes itself, `*` consumes any one word, `#` loops on any word and
 * may also be skipped. The allowed patterns together are one nondeterministic
 * automaton (their union); `pattern` is covered iff no key accepted by the
 * pattern's automaton leaves the union in a set of states that contains no
 * accepting state. We explore pairs (position in `pattern`, set of union
 * states) breadth first, which is the textbook inclusion check between an NFA
 * and a determinised NFA, with two observations that keep it small:
 *
 * 1. Words that appear in no pattern are interchangeable: each is matched by
 *    `*` and `#` and by nothing else. So one symbol, OTHER, stands for all of
 *    them, and the alphabet is finite.
 * 2. We only need keys that put OTHER wherever `pattern` has `*` or `#`.
 *    Take any key the pattern matches and no allowed pattern matches, and
 *    replace a word that the pattern matched with `*` or `#` by a word no
 *    pattern mentions. The pattern still matches (same alignment). An allowed
 *    pattern that matched the new key would have matched the old one too (the
 *    new word can only have been consumed by its `*` or `#`, which accept the
 *    old word as well), so none does. Hence if any counterexample exists, one
 *    of this shape exists, of the same length: at each step the pattern reads
 *    either its next literal word or OTHER, instead of every symbol.
 *
 * Because the search is breadth first, the counterexample it finds is a
 * shortest one, which makes `forbidden` messages readable.
 *
 * What counts as a routing key. The search considers every sequence of words,
 * of any length, including the empty sequence: RabbitMQ routes the empty key
 * `""` to `#` but not to `*.#`, and a publisher that bypasses topicgate can send
 * it. It also ignores the 255-byte limit on keys. Both make the check consider
 * more keys than can really occur, which can only make it refuse more: sound.
 *
 * Precondition: every argument is a valid pattern (see `patternError` in
 * `@topicgate/shared`); the caller reports `invalid_pattern` before asking.
 */

/**
 * How many (position, state set) pairs the search may explore before it gives
 * up. Because the pattern's wildcards only ever read OTHER (observation 2), the
 * state sets along a run of wildcards settle within a few steps, so a search
 * needs roughly (pattern length × longest allowed pattern) pairs: a few dozen
 * for real tokens. The bound exists so that an absurd token cannot make one
 * subscription cost unbounded CPU. When it is exceeded, the pattern is treated
 * as NOT covered: refusing is always safe.
 */
export const MAX_EXPLORED_STATES = 10_000;

/** The outcome of a containment check. */
export type Coverage =
  /** Every key the pattern can match is matched by an allowed pattern. */
  | { verdict: 'covered' }
  /** `example` is a (shortest) key the pattern matches and no allowed pattern does. */
  | { verdict: 'uncovered'; example: string }
  /** The search exceeded its bound; treat as not covered. */
  | { verdict: 'too_complex' };

export interface CoverageLimits {
  /** Explored (position, state set) pairs before giving up. Default: `MAX_EXPLORED_STATES`. */
  maxStates?: number;
}

/**
 * True iff every routing key `pattern` can match is matched by at least one
 * pattern in `allowed` (RabbitMQ topic semantics). Sound: false when in doubt.
 *
 * @example
 * patternCovered('builds.*.finished', ['builds.#']); // true
 * patternCovered('builds.#', ['builds.*']);           // false: "builds" and "builds.x.y"
 * patternCovered('a.#', ['a', 'a.*.#']);               // true: only the union covers it
 */
export function patternCovered(pattern: string, allowed: readonly string[]): boolean {
  return checkCoverage(pattern, allowed).verdict === 'covered';
}

/**
 * A shortest routing key that `pattern` matches and no pattern in `allowed`
 * does, for error messages; `null` when there is none, or when the check gave
 * up (use `checkCoverage` to tell those apart). Words that no pattern mentions
 * are shown as fresh words (`x`, `y`, `z`, …). The empty string stands for the
 * empty routing key.
 *
 * @example
 * uncoveredExample('builds.#', ['builds.*.#']); // "builds"
 */
export function uncoveredExample(pattern: string, allowed: readonly string[]): string | null {
  const result = checkCoverage(pattern, allowed);
  return result.verdict === 'uncovered' ? result.example : null;
}

/** The full answer: covered, uncovered with a counterexample, or too complex to decide. */
export function checkCoverage(pattern: string, allowed: readonly string[], limits: CoverageLimits = {}): Coverage {
  // The common case needs no search: the token names the pattern itself.
  if (allowed.includes(pattern)) return { verdict: 'covered' };

  const union = new UnionAutomaton(allowed);
  const words = pattern.split('.');
  const maxStates = limits.maxStates ?? MAX_EXPLORED_STATES;

  const start: SearchNode = { at: 0, states: union.start(), read: undefined, prev: undefined };
  const seen = new Set<string>();
  // Breadth first by key length. Skipping a `#` reads no word, so it extends the
  // current level (`level.push`) rather than the next: the first counterexample
  // found is a shortest one.
  let level: SearchNode[] = [start];
  while (level.length > 0) {
    const next: SearchNode[] = [];
    for (let i = 0; i < level.length; i++) {
      const node = level[i]!;
      // The continuation of a pair depends only on the pair, not on how we got
      // there, and the first visit was by a key at least as short.
      const id = `${node.at}|${node.states.join(',')}`;
      if (seen.has(id)) continue;
      seen.add(id);
      if (seen.size > maxStates) return { verdict: 'too_complex' };

      // Some allowed pattern has only `#` left: it accepts every continuation.
      if (union.acceptsEverythingFrom(node.states)) continue;

      if (node.at === words.length) {
        if (!union.accepts(node.states)) return { verdict: 'uncovered', example: spellKey(node, pattern, allowed) };
        continue;
      }

      const word = words[node.at]!;
      if (word === '#') {
        level.push({ at: node.at + 1, states: node.states, read: undefined, prev: node }); // `#` matches no more words
        next.push({ at: node.at, states: union.step(node.states, OTHER), read: OTHER, prev: node }); // one more
      } else if (word === '*') {
        next.push({ at: node.at + 1, states: union.step(node.states, OTHER), read: OTHER, prev: node });
      } else {
        next.push({ at: node.at + 1, states: union.step(node.states, word), read: word, prev: node });
      }
    }
    level = next;
  }
  return { verdict: 'covered' };
}

/** Stands for every word that no pattern in the question mentions. */
const OTHER = null;
/** A word of a key, as the search sees it: a literal some pattern mentions, or OTHER. */
type KeyWord = string | typeof OTHER;

/** Marks the accepting state that ends each allowed pattern. */
const END = Symbol('end');

/** A sorted list of union states, closed under skipping `#`. */
type StateSet = readonly number[];

interface SearchNode {
  /** How many words of the requested pattern have been used up. */
  at: number;
  /** Where the allowed patterns can be after the key read so far. */
  states: StateSet;
  /** The word read to get here; `undefined` for skipping a `#`. */
  read: KeyWord | undefined;
  prev: SearchNode | undefined;
}

/**
 * The allowed patterns as one NFA. Pattern `w1.….wn` has states 0..n (state k:
 * "k words of the pattern matched"), laid out one pattern after another in
 * flat arrays; state n of each pattern is accepting.
 */
class UnionAutomaton {
  /** The pattern word a state consumes next, or `END` for an accepting state. */
  private readonly wordAt: (string | typeof END)[] = [];
  /** True when the state is on a `#` and only `#` words follow: every continuation is accepted. */
  private readonly universal: boolean[] = [];
  private readonly initial: number[] = [];

  constructor(patterns: readonly string[]) {
    for (const pattern of patterns) {
      const words = pattern.split('.');
      this.initial.push(this.wordAt.length);
      // Built backwards. The end state is not universal: it accepts only the
      // key read so far, and one more word leaves the pattern. A state is
      // universal when it sits on a `#` and only `#` words follow.
      const universal: boolean[] = [false];
      let onlyHashesFromHere = true;
      for (let k = words.length - 1; k >= 0; k--) {
        onlyHashesFromHere = onlyHashesFromHere && words[k] === '#';
        universal.push(onlyHashesFromHere);
      }
      universal.reverse();
      this.wordAt.push(...words, END);
      this.universal.push(...universal);
    }
  }

  start(): StateSet {
    return this.close(this.initial);
  }

  /** The states after reading one word. */
  step(states: StateSet, symbol: KeyWord): StateSet {
    const out: number[] = [];
    for (const s of states) {
      const word = this.wordAt[s];
      if (word === '#') out.push(s); // `#` absorbs the word and may absorb more
      else if (word === '*' || word === symbol) out.push(s + 1); // OTHER equals no literal
    }
    return this.close(out);
  }

  accepts(states: StateSet): boolean {
    return states.some((s) => this.wordAt[s] === END);
  }

  acceptsEverythingFrom(states: StateSet): boolean {
    return states.some((s) => this.universal[s] === true);
  }

  /** Adds the states reached by letting `#` match zero words; sorts, dedupes. */
  private close(states: readonly number[]): StateSet {
    const set = new Set<number>();
    for (let s of states) {
      set.add(s);
      while (this.wordAt[s] === '#') set.add(++s); // s + 1 exists: every pattern ends in END
    }
    return [...set].sort((a, b) => a - b);
  }
}

/** Spells the key that led to `node`, naming OTHER words with fresh words. */
function spellKey(node: SearchNode, pattern: string, allowed: readonly string[]): string {
  const read: KeyWord[] = [];
  for (let n: SearchNode | undefined = node; n !== undefined; n = n.prev) {
    if (n.read !== undefined) read.push(n.read);
  }
  read.reverse();
  const fresh = freshWords(new Set([pattern, ...allowed].flatMap((p) => p.split('.'))));
  return read.map((word) => (word === OTHER ? fresh.next().value : word)).join('.');
}

/** x, y, z, x2, y2, z2, …, skipping words some pattern mentions (they would not be "other"). */
function* freshWords(taken: ReadonlySet<string>): Generator<string, never> {
  for (let round = 1; ; round++) {
    for (const letter of ['x', 'y', 'z']) {
      const word = round === 1 ? letter : `${letter}${round}`;
      if (!taken.has(word)) yield word;
    }
  }
}
