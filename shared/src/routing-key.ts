/**
 * Routing keys and topic patterns, with RabbitMQ's topic-exchange semantics.
 *
 * A key is words joined by `.`; a word is 1+ chars of `[A-Za-z0-9_:-]`; at most
 * 255 bytes. A pattern may also use `*` (exactly one word) and `#` (zero or more
 * words). Validation happens here, before anything reaches a broker, so that a
 * client's typo becomes an `invalid_pattern` error instead of a broker-side
 * surprise.
 */

/** The AMQP 0-9-1 limit on a routing key (a shortstr). */
export const MAX_KEY_BYTES = 255;

const WORD = /^[A-Za-z0-9_:-]+$/;

/** Returns why `key` is not a valid routing key, or `null` when it is. */
export function routingKeyError(key: unknown): string | null {
  return checkWords(key, 'routing key', false);
}

/** Returns why `pattern` is not a valid subscription pattern, or `null` when it is. */
export function patternError(pattern: unknown): string | null {
  return checkWords(pattern, 'pattern', true);
}

export function isRoutingKey(key: unknown): key is string {
  return routingKeyError(key) === null;
}

export function isPattern(pattern: unknown): pattern is string {
  return patternError(pattern) === null;
}

function checkWords(value: unknown, what: string, wildcards: boolean): string | null {
  if (typeof value !== 'string') return `a ${what} must be a string, got ${value === null ? 'null' : typeof value}`;
  if (value.length === 0) return `a ${what} must not be empty`;
  // Valid words are ASCII, so length equals byte length for every value that can pass.
  if (value.length > MAX_KEY_BYTES) return `a ${what} must be at most ${MAX_KEY_BYTES} bytes, got ${value.length} characters`;
  const words = value.split('.');
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    if (word === '') return `${what} "${value}" has an empty word at position ${i + 1} (two dots, or a leading or trailing dot)`;
    if (wildcards && (word === '*' || word === '#')) continue;
    if (!WORD.test(word)) {
      const hint = wildcards
        ? '; `*` and `#` must stand alone as a whole word'
        : '; wildcards are allowed in patterns, not in routing keys';
      return `${what} "${value}" has an invalid word "${word}": use letters, digits, "_", ":" and "-"${hint}`;
    }
  }
  return null;
}

/**
 * `#` words a subscription pattern may hold once canonical. RabbitMQ's topic
 * routing explores every way each `#` can stretch, so a binding's cost per
 * published message grows exponentially with them: measured on RabbitMQ 3.10
 * with a 10-word key, a binding with 4 `#` cost 70 times a plain one, with 8
 * about 4,000 times, and every publish under its prefix pays. Two stay within
 * a few times (`#.error.#`).
 */
export const MAX_PATTERN_HASHES = 2;

/**
 * The canonical form of a valid pattern: each run of adjacent wildcard words
 * that holds a `#` becomes its `*`s followed by one `#` (`#.#` → `#`,
 * `#.*` → `*.#`, `*.#.*` → `*.*.#`). It matches exactly the keys the original
 * matches, and costs the broker least.
 */
export function canonicalPattern(pattern: string): string {
  const out: string[] = [];
  let stars = 0;
  let hash = false;
  const endRun = () => {
    for (; stars > 0; stars--) out.push('*');
    if (hash) out.push('#');
    hash = false;
  };
  for (const word of pattern.split('.')) {
    if (word === '*') stars++;
    else if (word === '#') hash = true;
    else {
      endRun();
      out.push(word);
    }
  }
  endRun();
  return out.join('.');
}

/** Why a canonical pattern would cost the broker too much to bind, or `null`. */
export function patternCostError(canonical: string): string | null {
  const hashes = canonical.split('.').filter((word) => word === '#').length;
  if (hashes <= MAX_PATTERN_HASHES) return null;
  return `pattern "${canonical}" has ${hashes} "#" words; at most ${MAX_PATTERN_HASHES} are allowed (each one multiplies what the broker does for every message published)`;
}

/** A compiled pattern: cheap to test against many keys (the embedded broker's hot path). */
export type KeyMatcher = (key: string) => boolean;

/**
 * Compiles a valid pattern into a matcher. Patterns without `#` (the common
 * case) compare word by word; patterns with `#` use a linear-space dynamic
 * programme, so no pattern can cause exponential backtracking.
 */
export function compilePattern(pattern: string): KeyMatcher {
  const p = pattern.split('.');
  if (pattern === '#') return () => true;
  if (!p.includes('#')) {
    if (!p.includes('*')) return (key) => key === pattern;
    return (key) => {
      const k = keyWords(key);
      if (k.length !== p.length) return false;
      for (let i = 0; i < p.length; i++) if (p[i] !== '*' && p[i] !== k[i]) return false;
      return true;
    };
  }
  return (key) => matchWords(p, keyWords(key));
}

/** True iff `key` is routed to a queue bound with `pattern` on a topic exchange. */
export function topicMatches(pattern: string, key: string): boolean {
  return matchWords(pattern.split('.'), keyWords(key));
}

/** RabbitMQ splits the empty key into no words at all (so `#` matches it and `*` does not), not into one empty word. */
function keyWords(key: string): string[] {
  return key === '' ? [] : key.split('.');
}

/** reach[j]: the first i pattern words can consume exactly the first j key words. */
function matchWords(p: readonly string[], k: readonly string[]): boolean {
  let reach = new Array<boolean>(k.length + 1).fill(false);
  reach[0] = true;
  for (const word of p) {
    const next = new Array<boolean>(k.length + 1).fill(false);
    if (word === '#') {
      let any = false;
      for (let j = 0; j <= k.length; j++) {
        any = any || reach[j]!;
        next[j] = any;
      }
    } else {
      for (let j = 1; j <= k.length; j++) {
        next[j] = reach[j - 1]! && (word === '*' || word === k[j - 1]);
      }
    }
    reach = next;
  }
  return reach[k.length]!;
}
