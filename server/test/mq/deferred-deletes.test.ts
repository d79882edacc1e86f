/**
 * Deletes of resumable queues whose node is down are retried until the node
 * is back or the resume window has passed (amqp-deferred-deletes.ts). The
 * real thing — a node killed and restarted — is drilled in
 * server/test/cluster/cluster.test.ts.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DeferredDeletes, type DeleteAttempt } from '../../src/mq/amqp-deferred-deletes.js';
import { recordingLog } from '../support/recording-log.js';

afterEach(() => {
  vi.useRealTimers();
});

function deletes(outcomes: Record<string, DeleteAttempt[]>) {
  const tried: string[] = [];
  const { log, records } = recordingLog();
  const deferred = new DeferredDeletes(
    async (queue) => {
      tried.push(queue);
      return outcomes[queue]!.shift() ?? 'unreachable';
    },
    log,
    1_000,
  );
  return { deferred, tried, records };
}

describe('deferred deletes', () => {
  it('retries each queue until its node is back, then stops trying it; a round ends at the first node still away', async () => {
    vi.useFakeTimers();
    const { deferred, tried } = deletes({ a: ['unreachable', 'unreachable', 'done'], b: ['done'] });
    deferred.add('a', 60_000);
    deferred.add('b', 60_000);
    expect(tried).toEqual([]); // the node just went: no point asking at once
    await vi.advanceTimersByTimeAsync(1_000);
    expect(tried).toEqual(['a']); // away: b is not asked this round...
    await vi.advanceTimersByTimeAsync(1_000);
    expect(tried).toEqual(['a', 'b', 'a']); // ...but first in the next, a having gone last
    expect(deferred.size).toBe(1);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(tried).toEqual(['a', 'b', 'a', 'a']);
    expect(deferred.size).toBe(0);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(tried).toHaveLength(4);
  });

  it('gives up once the window has passed, saying the broker deletes it later', async () => {
    vi.useFakeTimers();
    const { deferred, tried, records } = deletes({ a: [] });
    deferred.add('a', 2_500);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(tried).toEqual(['a', 'a']);
    expect(deferred.size).toBe(0);
    expect(records.map((r) => r.msg)).toEqual([expect.stringContaining('gave up deleting a resumable queue')]);
  });

  it('an attempt that throws counts as not done yet', async () => {
    vi.useFakeTimers();
    let calls = 0;
    const deferred = new DeferredDeletes(
      async () => {
        if (++calls === 1) throw new Error('channel closed');
        return 'done';
      },
      recordingLog().log,
      1_000,
    );
    deferred.add('a', 60_000);
    await vi.advanceTimersByTimeAsync(2_000);
    expect(calls).toBe(2);
    expect(deferred.size).toBe(0);
  });

  it('close() during an attempt: nothing is tried again', async () => {
    vi.useFakeTimers();
    let answer!: (outcome: DeleteAttempt) => void;
    let calls = 0;
    const deferred = new DeferredDeletes(
      () => {
        calls++;
        return new Promise<DeleteAttempt>((resolve) => (answer = resolve));
      },
      recordingLog().log,
      1_000,
    );
    deferred.add('a', 60_000);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(calls).toBe(1);
    deferred.close();
    answer('unreachable');
    await vi.advanceTimersByTimeAsync(10_000);
    expect(calls).toBe(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('close() forgets what was pending', async () => {
    vi.useFakeTimers();
    const { deferred, tried } = deletes({ a: [] });
    deferred.add('a', 60_000);
    deferred.close();
    await vi.advanceTimersByTimeAsync(5_000);
    expect(tried).toEqual([]);
  });
});
