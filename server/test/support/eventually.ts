/**
 * The one way tests wait for a condition that nothing announces (broker
 * state seen through rabbitmqctl, an HTTP endpoint, a process coming up):
 * vitest's `vi.waitFor`, which never runs two probes at once, so a probe
 * slower than the interval (rabbitmqctl takes about a second) does not pile up.
 * Where an event announces the change, wait for the event instead (an Inbox).
 */
import { vi } from 'vitest';

export interface EventuallyOptions {
  timeoutMs?: number;
  intervalMs?: number;
}

/**
 * Polls `probe` until it returns true; fails naming `what`. A probe that
 * throws fails the wait at once: only "not yet" is retried, never an error
 * (wrap the probe to tolerate one on purpose).
 */
export async function eventually(probe: () => boolean | Promise<boolean>, what: string, options: number | EventuallyOptions = {}): Promise<void> {
  const { timeoutMs = 15_000, intervalMs = 100 } = typeof options === 'number' ? { timeoutMs: options } : options;
  let failure: { error: unknown } | undefined;
  try {
    await vi.waitFor(
      async () => {
        try {
          if (await probe()) return;
        } catch (error) {
          failure = { error };
          return;
        }
        throw new Error('not yet');
      },
      { timeout: timeoutMs, interval: intervalMs },
    );
  } catch {
    throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
  }
  if (failure) throw failure.error;
}
