/**
 * Exponential backoff with "equal jitter", as the gateway reconnects
 * (server/src/mq/backoff.ts; copied, not imported: this package installs
 * without the server). Half the delay is fixed, half random, so publishers
 * that lost the same broker do not come back in lockstep.
 */
export function backoffDelay(attempt: number, initialMs: number, maxMs: number, random = Math.random): number {
  const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
  return ceiling / 2 + random() * (ceiling / 2);
}
