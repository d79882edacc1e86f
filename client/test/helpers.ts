import { vi } from 'vitest';

/**
 * Waits until `condition` holds; fails with `what` after `timeout` ms. With
 * `vi.useFakeTimers()` it moves the fake clock forward instead, in steps of a
 * few ms, so timers the condition depends on fire in order and at once.
 */
export async function until(condition: () => boolean, what = 'condition', timeout = 5_000): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    if (vi.isFakeTimers()) await vi.advanceTimersByTimeAsync(2);
    else await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** Lets queued microtasks and zero-delay timers run (without moving a fake clock). */
export async function ticks(n = 5): Promise<void> {
  for (let i = 0; i < n; i++) {
    if (vi.isFakeTimers()) await vi.advanceTimersByTimeAsync(0);
    else await new Promise((resolve) => setTimeout(resolve, 0));
  }
}
