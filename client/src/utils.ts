/** Exponential backoff with jitter: each delay is drawn from [cap/2, cap], cap doubling up to `max`. */
export class Backoff {
  #attempt = 0;
  readonly #min: number;
  readonly #max: number;

  constructor(min: number, max: number) {
    this.#min = Math.max(0, min);
    this.#max = Math.max(this.#min, max);
  }

  /** The delay before the next attempt, in milliseconds. */
  next(): number {
    // Capping the exponent keeps 2 ** n finite for clients that retry for days.
    const cap = Math.min(this.#max, this.#min * 2 ** Math.min(this.#attempt, 30));
    this.#attempt++;
    return cap / 2 + (Math.random() * cap) / 2;
  }

  reset(): void {
    this.#attempt = 0;
  }
}

/** setTimeout fires at once for delays past 2^31-1 ms; a token valid for a month must not. */
export const MAX_TIMER_DELAY = 2 ** 31 - 1;

export interface TokenTimes {
  /** `exp` claim: seconds since the epoch. */
  exp: number;
  /** `iat` claim, when present. */
  iat?: number;
}

/**
 * Reads `exp` (and `iat`) from a JWT without verifying it: the SDK only needs
 * to know when to fetch the next token, the gateway does the verifying.
 * Returns `undefined` for anything that is not a JWT with a numeric `exp`.
 */
export function readTokenTimes(token: string): TokenTimes | undefined {
  const part = token.split('.')[1];
  if (part === undefined || part === '') return undefined;
  try {
    const base64 = part.replace(/-/g, '+').replace(/_/g, '/');
    const padded = base64 + '='.repeat((4 - (base64.length % 4)) % 4);
    const claims: unknown = JSON.parse(atob(padded));
    if (typeof claims !== 'object' || claims === null) return undefined;
    const { exp, iat } = claims as { exp?: unknown; iat?: unknown };
    if (typeof exp !== 'number' || !Number.isFinite(exp)) return undefined;
    return typeof iat === 'number' && Number.isFinite(iat) && iat <= exp ? { exp, iat } : { exp };
  } catch {
    return undefined;
  }
}

/**
 * Milliseconds from `now` until a token obtained at `obtainedAt` should be
 * replaced, or `undefined` when it never expires. With `iat`, the lifetime
 * (exp - iat) is counted from when this browser received the token, so a
 * browser clock that is minutes off does not refresh too late.
 */
export function refreshDelay(times: TokenTimes, obtainedAt: number, now: number, refreshBefore: number): number {
  const expiresAt = times.iat !== undefined ? obtainedAt + (times.exp - times.iat) * 1000 : times.exp * 1000;
  const remaining = expiresAt - now;
  // Short-lived tokens would otherwise be refreshed continuously: keep at least half the remaining life.
  return Math.max(0, remaining - refreshBefore, remaining / 2);
}

export function toArray<T>(value: T | readonly T[]): readonly T[] {
  return Array.isArray(value) ? (value as readonly T[]) : [value as T];
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
