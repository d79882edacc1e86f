/**
 * Every option's default value, in one place. `types.ts` documents each one;
 * a constructor merges its section once, so no default is restated in the
 * code. Defaults that are code rather than values (socket.io-client's `io`,
 * how to read an id, a version or log lines) stay with the module that owns
 * that code, so that the views do not depend on socket.io-client.
 */

export const DEFAULTS = {
  client: {
    refreshBefore: 30_000,
    autoConnect: true,
    reconnectDelay: 500,
    reconnectDelayMax: 20_000,
    resubscribeDelay: 1_000,
    resubscribeDelayMax: 30_000,
    path: '/socket.io',
    resume: true,
  },
  /** Not an option: how a refresh that failed (getToken or the gateway) is retried. */
  tokenRefreshRetry: {
    retryDelay: 1_000,
    retryDelayMax: 30_000,
  },
  liveCollection: {
    maxHeld: 10_000,
    retryDelay: 1_000,
    retryDelayMax: 30_000,
  },
  logTail: {
    maxLines: 10_000,
    tailLines: 1_000,
    retryDelay: 1_000,
    retryDelayMax: 30_000,
  },
} as const;

/** `O` once `withDefaults` filled in every option that `D` has a default for. */
export type WithDefaults<O, D> = Omit<O, keyof D> & { [K in keyof D & keyof O]-?: NonNullable<O[K]> };

/** `options` with each option it leaves out (or sets to undefined or null, as `??` did) taken from `defaults`. */
export function withDefaults<O extends object, D extends { [K in keyof D]: K extends keyof O ? NonNullable<O[K]> : never }>(
  options: O,
  defaults: D,
): WithDefaults<O, D> {
  const merged: Record<string, unknown> = { ...(options as Record<string, unknown>) };
  for (const [key, value] of Object.entries(defaults)) merged[key] ??= value;
  return merged as WithDefaults<O, D>;
}
