/**
 * Resumable queues the gateway meant to delete while their node was down.
 *
 * A durable queue outlives its node: RabbitMQ refuses to delete it while
 * the node is away (404, "home node … is down or inaccessible") and brings it
 * back, bound, when the node returns. Nobody will consume it — its claim
 * was replaced — yet it would fill with every matching message until its
 * x-expires ran out, a resume window after the node came back. So the
 * delete is retried until it succeeds or the window has passed.
 */
import type { Logger } from 'pino';

/** What one attempt found: deleted (or already gone), or the node still away. */
export type DeleteAttempt = 'done' | 'unreachable';

/** How often a deferred delete is tried again: a returning node is usually back within seconds. */
export const DEFERRED_DELETE_RETRY_MS = 2_000;

export class DeferredDeletes {
  /** Queue name → when to give up (the broker's x-expires takes over then). */
  private readonly pending = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;
  private trying = false;
  private closed = false;

  constructor(
    private readonly attempt: (queue: string) => Promise<DeleteAttempt>,
    private readonly log: Logger,
    private readonly retryMs = DEFERRED_DELETE_RETRY_MS,
  ) {}

  get size(): number {
    return this.pending.size;
  }

  add(queue: string, forMs: number): void {
    if (this.closed) return;
    this.pending.set(queue, Date.now() + forMs);
    this.schedule();
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.pending.clear();
  }

  private schedule(): void {
    if (this.closed || this.timer || this.pending.size === 0) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.retry();
    }, this.retryMs);
    // Nothing to keep the process alive for: past its window the broker deletes the queue anyway.
    this.timer.unref();
  }

  private async retry(): Promise<void> {
    if (this.trying) return;
    this.trying = true;
    try {
      for (const [queue, until] of [...this.pending]) {
        if (this.closed) return;
        if (Date.now() > until) {
          this.pending.delete(queue);
          this.log.warn({ queue }, 'gave up deleting a resumable queue whose node stayed away for the whole resume window; the broker deletes it once unused for the window after the node returns');
          continue;
        }
        // Errors other than an absent node are the attempt's to report; the queue is retried either way until its deadline.
        const outcome = await this.attempt(queue).catch(() => 'unreachable' as const);
        if (this.closed) return;
        this.pending.delete(queue);
        if (outcome === 'done') continue;
        // Its node is still away, and often the others' too (most of a gateway's queues live on the node it is
        // connected to; resumed ones may not): each refusal costs a channel, so the round ends here, this queue
        // last in line for the next. A queue on a node that is back waits at most a round per queue ahead of it.
        this.pending.set(queue, until);
        break;
      }
    } finally {
      this.trying = false;
      this.schedule();
    }
  }
}
