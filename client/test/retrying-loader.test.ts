/**
 * The REST side both live views share: one request at a time, stale answers
 * dropped, failures retried after a backoff, nothing after close.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { RetryingLoader } from '../src/retrying-loader.js';

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

function recorder() {
  const outcomes: string[] = [];
  return {
    outcomes,
    outcome: {
      loaded: (value: string) => outcomes.push(`loaded ${value}`),
      failed: (error: unknown) => outcomes.push(`failed ${(error as Error).message}`),
    },
  };
}

describe('retrying loader', () => {
  it('reports an answer, and is busy until it arrives', async () => {
    const loader = new RetryingLoader(10, 40);
    const { outcomes, outcome } = recorder();
    let resolve!: (value: string) => void;
    loader.start(() => new Promise<string>((r) => (resolve = r)), outcome);
    expect(loader.inFlight).toBe(true);
    expect(loader.idle).toBe(false);
    resolve('a');
    await Promise.resolve();
    expect(outcomes).toEqual(['loaded a']);
    expect(loader.idle).toBe(true);
  });

  it('reports a synchronous throw as a failure, later, like a rejection', async () => {
    const loader = new RetryingLoader(10, 40);
    const { outcomes, outcome } = recorder();
    loader.start(() => {
      throw new Error('bad URL');
    }, outcome);
    expect(outcomes).toEqual([]);
    await Promise.resolve();
    await Promise.resolve();
    expect(outcomes).toEqual(['failed bad URL']);
  });

  it('drops the answer of a request a newer one replaced', async () => {
    const loader = new RetryingLoader(10, 40);
    const { outcomes, outcome } = recorder();
    const resolvers: ((value: string) => void)[] = [];
    const load = () => new Promise<string>((r) => resolvers.push(r));
    loader.start(load, outcome);
    loader.start(load, outcome);
    resolvers[0]!('old');
    resolvers[1]!('new');
    await Promise.resolve();
    await Promise.resolve();
    expect(outcomes).toEqual(['loaded new']);
  });

  it('retries after a delay that doubles up to the maximum, and shrinks again after a success', async () => {
    vi.useFakeTimers();
    vi.spyOn(Math, 'random').mockReturnValue(1); // no jitter: each delay is its cap
    const loader = new RetryingLoader(10, 25);
    const retries: number[] = [];
    const retry = () => retries.push(Date.now());
    const start = Date.now();
    for (const expected of [10, 20, 25, 25]) {
      const before = Date.now();
      loader.retryLater(retry);
      expect(loader.retryPending).toBe(true);
      const count = retries.length;
      await vi.advanceTimersByTimeAsync(expected - 1);
      expect(retries.length).toBe(count);
      await vi.advanceTimersByTimeAsync(1);
      expect(retries.length).toBe(count + 1);
      expect(Date.now() - before).toBe(expected);
    }
    expect(Date.now() - start).toBe(80);
    loader.succeeded();
    loader.retryLater(retry);
    await vi.advanceTimersByTimeAsync(10);
    expect(retries).toHaveLength(5);
  });

  it('aborts the request in flight on close, and neither reports nor retries after it', async () => {
    vi.useFakeTimers();
    const loader = new RetryingLoader(10, 40);
    const { outcomes, outcome } = recorder();
    let resolve!: (value: string) => void;
    let signal!: AbortSignal;
    loader.start((s) => ((signal = s), new Promise<string>((r) => (resolve = r))), outcome);
    let retried = false;
    loader.retryLater(() => (retried = true));
    loader.close();
    expect(signal.aborted).toBe(true);
    resolve('late');
    await vi.advanceTimersByTimeAsync(1_000);
    loader.retryLater(() => (retried = true));
    await vi.advanceTimersByTimeAsync(1_000);
    expect(outcomes).toEqual([]);
    expect(retried).toBe(false);
    expect(loader.idle).toBe(true);
  });
});
