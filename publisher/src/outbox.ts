/**
 * The messages a publisher holds until the broker confirms them, in publish
 * order: those waiting for a link, and those sent on the current link. When a
 * link fails, what was sent and not confirmed goes back in front of what
 * waits, in its order, so that a reconnect sends everything again in the
 * order it was published.
 */
import type { OutgoingMessage } from './types.js';

export interface Pending {
  readonly message: OutgoingMessage;
  /** `done`: settled (a late confirm from a failed link may settle a message already waiting again). */
  state: 'waiting' | 'sent' | 'done';
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

export class Outbox {
  /** Not sent on the current link, oldest first (may hold `done` entries, skipped by `take`). */
  #waiting: Pending[] = [];
  /** Sent on the current link and unconfirmed; a Set iterates in insertion order, which is send order. */
  #sent = new Set<Pending>();
  /** Unsettled messages (waiting or sent). */
  #size = 0;
  #onEmpty: Array<() => void> = [];

  get size(): number {
    return this.#size;
  }

  add(message: OutgoingMessage): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#waiting.push({ message, state: 'waiting', resolve, reject });
      this.#size++;
    });
  }

  /** The oldest waiting message, now counted as sent; undefined when none waits. */
  take(): Pending | undefined {
    for (let pending = this.#waiting.shift(); pending; pending = this.#waiting.shift()) {
      if (pending.state !== 'waiting') continue;
      pending.state = 'sent';
      this.#sent.add(pending);
      return pending;
    }
    return undefined;
  }

  /** The broker confirmed it. */
  confirm(pending: Pending): void {
    if (this.#settle(pending)) pending.resolve();
  }

  /** It will not be sent again. */
  fail(pending: Pending, error: Error): void {
    if (this.#settle(pending)) pending.reject(error);
  }

  /** The link failed: everything sent and unconfirmed waits again, in front, in send order. */
  requeueSent(): void {
    const sent = [...this.#sent];
    this.#sent.clear();
    for (const pending of sent) pending.state = 'waiting';
    this.#waiting = sent.concat(this.#waiting);
  }

  /** Fails every unsettled message with the error `errorFor` gives it (it may tell sent from never sent). */
  failAll(errorFor: (pending: Pending) => Error): void {
    for (const pending of [...this.#sent, ...this.#waiting]) this.fail(pending, errorFor(pending));
    this.#waiting = [];
  }

  /** Resolves once nothing is unsettled. */
  whenEmpty(): Promise<void> {
    if (this.#size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#onEmpty.push(resolve));
  }

  #settle(pending: Pending): boolean {
    if (pending.state === 'done') return false;
    // A waiting one stays in #waiting as `done`; `take` skips it (cheaper than searching the array).
    this.#sent.delete(pending);
    pending.state = 'done';
    if (--this.#size === 0) for (const resolve of this.#onEmpty.splice(0)) resolve();
    return true;
  }
}
