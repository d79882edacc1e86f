/**
 * The life of one AMQP consumer as a table, so that a new event (resume, a
 * new kind of fault) has to say which states it may arrive in instead of
 * adding another flag.
 */
import type { RenewReason } from './connector.js';

export type ConsumerState =
  /** The first declare, bind and consume are in flight; the connector has not handed the consumer out yet. */
  | 'starting'
  | 'consuming'
  /** Our pooled channel died: consuming again on another. Messages may have been lost: owes `interrupted`. */
  | 'moving'
  /** The connection came back: declaring the queue again and consuming. Messages may have been lost: owes `reconnected`. */
  | 'restarting'
  /** Resumable only: its backlog reached the bound while the client was slow; replacing the queue with an empty one. Owes `overflow`. */
  | 'renewing'
  /** Stopped (asked, or ended by the broker): cancelling and deleting. Nothing is handed on and nothing starts again. */
  | 'ending'
  | 'ended';

const NEXT: Readonly<Record<ConsumerState, readonly ConsumerState[]>> = {
  // A channel can die between the consume joining it and start() resolving; a failed start leaves nothing to end.
  starting: ['consuming', 'moving', 'ending', 'ended'],
  consuming: ['moving', 'restarting', 'renewing', 'ending'],
  // Each restart attempt starts over, and a channel can die again while a move, restart or renewal is in flight.
  moving: ['consuming', 'moving', 'restarting', 'ending'],
  restarting: ['consuming', 'moving', 'restarting', 'ending'],
  renewing: ['consuming', 'moving', 'restarting', 'ending'],
  ending: ['ended'],
  ended: [],
};

/** The resync a state owes once the queue is consuming again. */
export function owedResync(state: ConsumerState): RenewReason | null {
  if (state === 'moving') return 'interrupted';
  if (state === 'restarting') return 'reconnected';
  if (state === 'renewing') return 'overflow';
  return null;
}

export function isStopped(state: ConsumerState): boolean {
  return state === 'ending' || state === 'ended';
}

export class IllegalTransitionError extends Error {
  override readonly name = 'IllegalTransitionError';
}

/**
 * Throws on a transition the table does not allow. The consumer lets it
 * through to the test runner, and in production logs it and stays put: a
 * bookkeeping bug must not take the process down from a broker callback.
 */
export function checkTransition(queue: string, from: ConsumerState, to: ConsumerState): void {
  if (!NEXT[from].includes(to)) throw new IllegalTransitionError(`consumer of ${queue}: no transition from ${from} to ${to}`);
}
