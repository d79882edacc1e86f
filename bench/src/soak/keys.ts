/**
 * The soak's routing keys and subscription patterns.
 *
 * Keys are `soak.s<stream>.e<event>`. The publisher goes round them in one
 * fixed (shuffled) order, so a message's global sequence number `g` alone
 * says which key it went to and what that key's counter was:
 * `key = keys[g % K]`, `n = floor(g / K) + 1`. That is what lets a receiver
 * work out exactly which messages a subscription should have received from a
 * few numbers, without a log of every publish.
 */
import { topicMatches } from '@topicgate/shared';

/** Whether a client's token allows every soak key (`broad`) or only its home streams (`narrow`). */
export type Scope = 'broad' | 'narrow';

/** A small deterministic PRNG (mulberry32): the publisher and every worker build the same key order from the same seed. */
export function randomSource(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class KeySpace {
  /** Routing keys in publish order: message g goes to keys[g % size]. */
  readonly keys: readonly string[];
  readonly size: number;
  private readonly matches = new Map<string, Int32Array>();

  constructor(
    readonly streams: number,
    readonly events: number,
  ) {
    const keys: string[] = [];
    for (let s = 0; s < streams; s++) for (let e = 0; e < events; e++) keys.push(`soak.s${s}.e${e}`);
    // Shuffled so that consecutive messages go to different streams (and so to different subscriptions).
    const rng = randomSource(0x50a4);
    for (let i = keys.length - 1; i > 0; i--) {
      const j = Math.floor(rng() * (i + 1));
      [keys[i], keys[j]] = [keys[j]!, keys[i]!];
    }
    this.keys = keys;
    this.size = keys.length;
  }

  keyIndexOf(g: number): number {
    return g % this.size;
  }

  /** The per-key counter carried by message g (1 for a key's first message). */
  counterOf(g: number): number {
    return Math.floor(g / this.size) + 1;
  }

  /** The global sequence number of key k's n-th message. */
  globalOf(k: number, n: number): number {
    return (n - 1) * this.size + k;
  }

  /** Key k's first counter whose message is at or after g. */
  firstCounterFrom(k: number, g: number): number {
    return g <= k ? 1 : Math.ceil((g - k) / this.size) + 1;
  }

  /** Key k's last counter whose message is at or before g (0: none). */
  lastCounterUpTo(k: number, g: number): number {
    return g < k ? 0 : Math.floor((g - k) / this.size) + 1;
  }

  /** Indices of the keys `pattern` matches, with RabbitMQ's topic semantics (cached per pattern). */
  matching(pattern: string): Int32Array {
    let found = this.matches.get(pattern);
    if (!found) {
      const list: number[] = [];
      for (let k = 0; k < this.size; k++) if (topicMatches(pattern, this.keys[k]!)) list.push(k);
      found = Int32Array.from(list);
      this.matches.set(pattern, found);
    }
    return found;
  }

  /** The last message at or before g that `pattern` matches (-1: none). */
  lastMatchUpTo(pattern: string, g: number): number {
    let last = -1;
    for (const k of this.matching(pattern)) {
      const n = this.lastCounterUpTo(k, g);
      if (n > 0) last = Math.max(last, this.globalOf(k, n));
    }
    return last;
  }
}

/**
 * The kinds of pattern clients pick, with weights. Stream patterns match one
 * stream's keys, event patterns one event across all streams, `soak.#`
 * everything (so each key fans out to several subscriptions of different
 * shapes, `*` and `#` in several positions). The wide ones are heavy, hence
 * their small weights — but they must be there: a busy subscription that is
 * unsubscribed or cut while deliveries are in flight to it is what stresses
 * the gateway's shared consumer channels most.
 */
const MIX: ReadonlyArray<{ weight: number; narrowOk: boolean; share: (space: KeySpace) => number; make: (stream: number, event: number) => string }> = [
  { weight: 42, narrowOk: true, share: (sp) => 1 / sp.streams, make: (s) => `soak.s${s}.*` },
  { weight: 15, narrowOk: true, share: (sp) => 1 / sp.streams, make: (s) => `soak.s${s}.#` },
  { weight: 40, narrowOk: true, share: (sp) => 1 / sp.size, make: (s, e) => `soak.s${s}.e${e}` },
  { weight: 1.5, narrowOk: false, share: (sp) => 1 / sp.events, make: (_s, e) => `soak.*.e${e}` },
  { weight: 0.8, narrowOk: false, share: (sp) => 1 / sp.events, make: (_s, e) => `soak.#.e${e}` },
  { weight: 0.7, narrowOk: false, share: () => 1, make: () => 'soak.#' },
];

/** The patterns of the client that stops reading: all traffic twice, so a 20 s pause overflows any socket buffer. */
export const SLOW_CLIENT_PATTERNS = ['soak.#', 'soak.#'];

/** A client's home streams: what its narrow token still allows (every third stream, offset by the client). */
export function homeStreams(clientId: number, streams: number): number[] {
  const home: number[] = [];
  for (let s = clientId % 3; s < streams; s += 3) home.push(s);
  return home;
}

/** The `topics` claim for a client's token. */
export function tokenTopics(scope: Scope, clientId: number, streams: number): string[] {
  return scope === 'broad' ? ['soak.#'] : homeStreams(clientId, streams).map((s) => `soak.s${s}.#`);
}

/** A random pattern the client's current token allows. */
export function randomPattern(space: KeySpace, scope: Scope, clientId: number, rng: () => number): string {
  const kinds = MIX.filter((m) => scope === 'broad' || m.narrowOk);
  let r = rng() * kinds.reduce((s, m) => s + m.weight, 0);
  let kind = kinds[kinds.length - 1]!;
  for (const m of kinds) {
    r -= m.weight;
    if (r < 0) {
      kind = m;
      break;
    }
  }
  const streams = scope === 'broad' ? null : homeStreams(clientId, space.streams);
  const stream = streams ? streams[Math.floor(rng() * streams.length)]! : Math.floor(rng() * space.streams);
  return kind.make(stream, Math.floor(rng() * space.events));
}

/** Expected deliveries per published message for `subscriptions` random broad patterns plus the slow client's. */
export function expectedFanout(space: KeySpace, subscriptions: number): number {
  const total = MIX.reduce((s, m) => s + m.weight, 0);
  const perRandom = MIX.reduce((s, m) => s + (m.weight / total) * m.share(space), 0);
  return SLOW_CLIENT_PATTERNS.length + Math.max(0, subscriptions - SLOW_CLIENT_PATTERNS.length) * perRandom;
}
