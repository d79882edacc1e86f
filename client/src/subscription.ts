import { ErrorCode, type Delivery, type ProtocolError, type UnsubscribedReason } from '@topicgate/shared';
import {
  ClientResyncReason,
  SubscriptionEndReason,
  type SubscriptionResyncReason,
} from './codes.js';
import { Emitter } from './emitter.js';
import { TopicgateError } from './errors.js';
import { ResumeTracker } from './resume-tracker.js';
import type { Message, SubscriptionEvents, SubscriptionState } from './types.js';
import { Backoff } from './utils.js';

/** Refusals that may succeed later; every other refusal ends the subscription. */
const RETRYABLE: ReadonlySet<string> = new Set([ErrorCode.Unavailable, ErrorCode.LimitExceeded]);

/** @internal What a subscription needs from its client. */
export interface SubscriptionHub {
  /** Ask the gateway for this subscription now, if the socket is connected (otherwise on connect). */
  send(subscription: Subscription<any>): void;
  /** Forget it, and end it on the gateway when it holds server id `id` on the current socket. */
  release(subscription: Subscription<any>, id: string | undefined): void;
}

/** @internal How a subscribe request was answered, beyond the id. */
export interface AckOutcome {
  /** The gateway took the subscription up where it was left: seq continues and nothing was lost. */
  resumed?: boolean;
  /** Why the views must reload, when the client knows better than "resubscribed" (a resume refused or expired). */
  reason?: SubscriptionResyncReason;
}

/**
 * One pattern the application listens to. It outlives reconnects: the client
 * makes it again on every new socket and reports a `resync`, because whatever
 * was published while it was away is lost — unless the gateway resumed it
 * (a resumable subscription taken up within the resume window), in which case
 * the missed messages follow and there is no `resync`.
 *
 * @example
 * const sub = client.subscribe('builds.*.finished', ({ key, body }) => show(key, body));
 * sub.on('resync', () => reloadBuilds());
 * sub.unsubscribe();
 */
export class Subscription<M = Message> extends Emitter<SubscriptionEvents<M>> {
  /** The routing-key pattern, as given to `subscribe`. */
  readonly pattern: string;

  #hub: SubscriptionHub;
  #state: SubscriptionState = 'subscribing';
  #id: string | undefined;
  #lastSeq = 0;
  #attempt = 0;
  #everSubscribed = false;
  /** Why the next acknowledgement must be followed by a resync. */
  #resyncOnAck: SubscriptionResyncReason | undefined;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #backoff: Backoff;
  /** @internal The resume position (seq, settled, receipts); inert unless the gateway granted resume. */
  readonly _resume = new ResumeTracker();

  /** @internal Made by `Client.subscribe`. */
  constructor(hub: SubscriptionHub, pattern: string, retryDelay: number, retryDelayMax: number) {
    super();
    this.#hub = hub;
    this.pattern = pattern;
    this.#backoff = new Backoff(retryDelay, retryDelayMax);
  }

  get state(): SubscriptionState {
    return this.#state;
  }

  /** The gateway's id for it on the current socket; undefined while not subscribed. */
  get id(): string | undefined {
    return this.#id;
  }

  /**
   * Ends the subscription: no message is delivered after this call, and the
   * gateway deletes its queue. A property, so `const { unsubscribe } = …` works.
   */
  readonly unsubscribe = (): void => {
    if (this.#state === 'unsubscribed') return;
    const id = this.#id;
    this.#end(SubscriptionEndReason.Unsubscribe);
    this.#hub.release(this, id);
  };

  /** @internal A new subscribe request is about to be sent; acks of older ones must be ignored. */
  _beginAttempt(): number {
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    return ++this.#attempt;
  }

  /** @internal */
  _isCurrent(attempt: number): boolean {
    return this.#state !== 'unsubscribed' && attempt === this.#attempt;
  }

  /** @internal */
  _isActive(): boolean {
    return this.#state !== 'unsubscribed';
  }

  /** @internal The gateway acknowledged with `id`. */
  _acked(id: string, outcome: AckOutcome = {}): void {
    const resumed = outcome.resumed === true;
    this.#id = id;
    // A resumed subscription's next delivery is lastSeq + 1: keeping it is what detects a gap across the resume.
    if (!resumed) this.#lastSeq = 0;
    this.#backoff.reset();
    const resubscribed = this.#everSubscribed;
    this.#everSubscribed = true;
    const reason = outcome.reason ?? this.#resyncOnAck;
    this.#resyncOnAck = undefined;
    this.#setState('subscribed');
    this.emit('subscribed', { id, resubscribed, resumed });
    if (resubscribed && !resumed && this.#state === 'subscribed') {
      this.emit('resync', { reason: reason ?? ClientResyncReason.Resubscribed });
    }
  }

  /** @internal One delivery for this subscription. The hot path: no allocation, `delivery` is the message. */
  _deliver(delivery: Delivery): void {
    if (this.#state !== 'subscribed') return;
    const seq = delivery.seq;
    if (typeof seq === 'number') {
      // The socket is ordered, so a lower seq can only be a repeat.
      if (seq <= this.#lastSeq) return;
      const gap = seq !== this.#lastSeq + 1;
      this.#lastSeq = seq;
      // Before the handlers run: a handler that throws or unsubscribes must not leave the position behind.
      if (this._resume.resumable) this._resume.delivered(delivery);
      if (gap) {
        this.emit('resync', { reason: ClientResyncReason.SeqGap });
        if (this.#state !== 'subscribed') return;
      }
    }
    this.emit('message', delivery as unknown as M);
  }

  /** @internal The gateway's `resync` notice. */
  _resync(reason: SubscriptionResyncReason): void {
    if (this.#state === 'subscribed') this.emit('resync', { reason });
  }

  /** @internal The socket went away; the client makes the subscription again once it is back. */
  _interrupted(): void {
    if (this.#state === 'unsubscribed') return;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    this.#id = undefined;
    if (this.#everSubscribed && this.#resyncOnAck === undefined) this.#resyncOnAck = ClientResyncReason.Resubscribed;
    this.#setState('subscribing');
  }

  /** @internal The gateway's `unsubscribed` notice. */
  _endedByServer(reason: UnsubscribedReason): void {
    if (this.#state === 'unsubscribed') return;
    this.#id = undefined;
    // The gateway ended it and deleted its queue: there is nothing to resume.
    this._resume.forget();
    if (reason === 'forbidden') {
      this.#end(SubscriptionEndReason.Forbidden);
      return;
    }
    // `queue_deleted` may be a broker hiccup and `shutdown` is followed by a reconnect
    // elsewhere: an application expects its view to keep updating, so make it again.
    this.#resyncOnAck = ClientResyncReason.Restarted;
    this.#setState('subscribing');
    this.#scheduleRetry();
  }

  /**
   * @internal The gateway refused the subscribe request.
   * @returns whether the subscription ended.
   */
  _rejected(error: ProtocolError): boolean {
    // Named by its pattern: a view over several patterns, or the client's own error listener, must say which.
    const err = new TopicgateError(error.code, `subscribing to "${this.pattern}" was refused: ${error.message}`);
    if (RETRYABLE.has(error.code)) {
      this.emit('error', err);
      if (this.#state !== 'unsubscribed') this.#scheduleRetry();
      return false;
    }
    this.emit('error', err);
    this.#end(SubscriptionEndReason.Rejected, err);
    return true;
  }

  /** @internal The client is closing. */
  _close(): void {
    this.#end(SubscriptionEndReason.Closed);
  }

  #scheduleRetry(): void {
    clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      if (this.#state !== 'unsubscribed') this.#hub.send(this);
    }, this.#backoff.next());
  }

  #end(reason: SubscriptionEndReason, error?: TopicgateError): void {
    if (this.#state === 'unsubscribed') return;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    this.#id = undefined;
    this._resume.forget();
    this.#setState('unsubscribed');
    this.emit('unsubscribed', error === undefined ? { reason } : { reason, error });
  }

  #setState(state: SubscriptionState): void {
    const previous = this.#state;
    if (previous === state) return;
    this.#state = state;
    this.emit('state', state, previous);
  }
}
