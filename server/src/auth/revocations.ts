/**
 * Revoked subjects, as this gateway learned them from the control exchange
 * (`topicgate revoke --sub NAME`, docs/protocol.md §10.5). A revocation at
 * time R refuses the subject's tokens issued before R — `iat` < R, counted in
 * whole seconds, so tokens issued in R's own second are refused too — and
 * those without `iat`. It is kept as long as such a token can still be valid:
 * the verifier accepts no token whose lifetime (exp − iat) exceeds the
 * maximum, so one issued before R is dead by R + maximum lifetime (+ clock skew).
 * Memory: one entry per revoked subject for that long, at most `maxEntries`.
 */

export interface Revocation {
  /** Tokens with an `iat` before this (epoch seconds) are refused. */
  notBefore: number;
  /** Epoch seconds after which the entry is dropped: no token it refuses can still be valid. */
  until: number;
}

export class Revocations {
  /** Insertion order is about the order of `until` (every entry lives equally long), which pruning and eviction rely on. */
  private readonly bySubject = new Map<string, Revocation>();

  /**
   * @param keepSeconds how long an entry lives: the longest token lifetime plus clock skew.
   * @param maxEntries past it the oldest entries are dropped (and `revoke` says so).
   */
  constructor(
    private readonly keepSeconds: number,
    private readonly maxEntries = 100_000,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Records that `sub` was revoked at `atMs` (epoch milliseconds). A later
   * revocation of the same subject moves the cutoff forward; an earlier one
   * changes nothing. Returns the entry in force and how many entries had to be
   * dropped to stay within `maxEntries` (normally 0).
   */
  revoke(sub: string, atMs: number): { revocation: Revocation; dropped: number } {
    this.prune();
    const notBefore = Math.ceil(atMs / 1000);
    const existing = this.bySubject.get(sub);
    if (existing && existing.notBefore >= notBefore) return { revocation: existing, dropped: 0 };
    const revocation = { notBefore, until: notBefore + this.keepSeconds };
    this.bySubject.delete(sub);
    this.bySubject.set(sub, revocation);
    let dropped = 0;
    for (const oldest of this.bySubject.keys()) {
      if (this.bySubject.size <= this.maxEntries) break;
      this.bySubject.delete(oldest);
      dropped++;
    }
    return { revocation, dropped };
  }

  /** Why a token of `sub` issued at `iat` is refused, or null when no revocation applies. */
  refusal(sub: string | undefined, iat: number | undefined): string | null {
    if (sub === undefined) return null;
    const entry = this.bySubject.get(sub);
    if (!entry) return null;
    if (this.now() / 1000 >= entry.until) {
      this.bySubject.delete(sub);
      return null;
    }
    const since = new Date(entry.notBefore * 1000).toISOString();
    if (iat === undefined) return `access for this subject was revoked at ${since}; a token without iat cannot show it was issued after that: get a new token`;
    if (iat < entry.notBefore) return `access for this subject was revoked at ${since}: tokens issued before then are refused; get a new token`;
    return null;
  }

  get size(): number {
    return this.bySubject.size;
  }

  private prune(): void {
    const now = this.now() / 1000;
    for (const [sub, entry] of this.bySubject) {
      if (entry.until > now) break; // the rest are younger
      this.bySubject.delete(sub);
    }
  }
}
