/**
 * Exponential backoff with "equal jitter": half the delay is fixed, half is
 * random, so a fleet of gateways that lost the same broker does not
 * reconnect in lockstep, yet no single one retries immediately.
 */
export function backoffDelay(attempt: number, initialMs: number, maxMs: number, random = Math.random): number {
  const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
  return ceiling / 2 + random() * (ceiling / 2);
}
