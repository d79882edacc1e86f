/**
 * The REST side shared by the live views: one request in flight at a time,
 * answers to an abandoned request ignored, failures retried with backoff.
 * What to request, and what an answer means, stays with each view.
 */
import { Backoff } from './utils.js';

export interface LoadOutcome<Res> {
  loaded(value: Res): void;
  failed(error: unknown): void;
}

export class RetryingLoader {
  readonly #backoff: Backoff;
  /** The request in flight; its identity is what tells a current answer from a stale one. */
  #abort: AbortController | undefined;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  constructor(retryDelay: number, retryDelayMax: number) {
    this.#backoff = new Backoff(retryDelay, retryDelayMax);
  }

  get inFlight(): boolean {
    return this.#abort !== undefined;
  }

  get retryPending(): boolean {
    return this.#retryTimer !== undefined;
  }

  /** Nothing in flight and no retry scheduled; a scheduled retry loads later than now anyway, and the backoff protects the REST API. */
  get idle(): boolean {
    return !this.inFlight && !this.retryPending;
  }

  /**
   * Starts `load`, abandoning any request in flight. The outcome is reported
   * unless the request was abandoned meanwhile (a later start, or close); a
   * synchronous throw is reported as a failure, on a later microtask like any other.
   */
  start<Res>(load: (signal: AbortSignal) => Promise<Res>, outcome: LoadOutcome<Res>): void {
    const abort = new AbortController();
    this.#abort = abort;
    let promise: Promise<Res>;
    try {
      promise = Promise.resolve(load(abort.signal));
    } catch (error) {
      promise = Promise.reject(error);
    }
    promise.then(
      (value) => {
        if (this.#abort !== abort) return;
        this.#abort = undefined;
        outcome.loaded(value);
      },
      (error: unknown) => {
        if (this.#abort !== abort) return;
        this.#abort = undefined;
        outcome.failed(error);
      },
    );
  }

  /** An answer was usable: the next failure waits the shortest delay again. */
  succeeded(): void {
    this.#backoff.reset();
  }

  /** Calls `retry` after the next backoff delay, unless closed first. */
  retryLater(retry: () => void): void {
    if (this.#closed) return;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      retry();
    }, this.#backoff.next());
  }

  /** Abandons the request in flight (aborting its signal) and any scheduled retry, for good. */
  close(): void {
    this.#closed = true;
    this.#abort?.abort();
    this.#abort = undefined;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
  }
}
