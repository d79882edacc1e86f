/**
 * The MQ connector: the one interface the gateway uses to reach a topic
 * exchange, with two implementations (`amqp`: RabbitMQ; `embedded`: in
 * process). It knows nothing of sockets or tokens. See docs/architecture.md §4; the contract is docs/protocol.md §12.
 */
import type { EventEmitter } from 'node:events';
import type { PublishableBody, ReadonlyJsonObject } from '@topicgate/shared';
import type { BodyDropReason } from './message-body.js';

export interface MqMessage {
  key: string;
  /** The body, parsed once and shared by every consumer the message reached: a change would show in all of them. */
  body: ReadonlyJsonObject;
  /** The body's JSON text exactly as published, already validated as a JSON object: relay it without re-serialising. */
  json: string;
  /** Bytes of the body as published (UTF-8 for a body the gateway published itself), not characters. */
  size: number;
}

/**
 * Called once per delivered message, in delivery order. For persistent
 * consumers the message is acknowledged when the returned promise settles.
 */
export type MessageHandler = (message: MqMessage) => void | Promise<void>;

/**
 * Why a live consumer may have lost messages: the broker connection was
 * re-established (`reconnected`), or the channel it consumed on died and it
 * now consumes on another (`interrupted`).
 */
export type ConsumerResyncReason = 'reconnected' | 'interrupted';

/** Why a consumer stopped without `stopConsuming()` being called. */
export type ConsumerEndReason = 'queue_deleted' | 'broker_error' | 'closed';

export interface ConsumeOptions {
  /**
   * Durable, shared, well-known queue name. Without it the consumer is
   * transient: an exclusive queue deleted on `stopConsuming()` or when the
   * connection dies.
   */
  persistentName?: string;
  /**
   * Suffix of a transient consumer's queue name (`<queuePrefix><name>`), so
   * callers can correlate their ids with broker queues. Must be unique per
   * connector; one is generated when omitted.
   */
  name?: string;
  /** Messages may have been lost; the consumer is still live, and everything from now on arrives. */
  onResync?: (reason: ConsumerResyncReason) => void;
  /** The consumer ended on its own (queue deleted from outside, broker error, connector closed). */
  onEnd?: (reason: ConsumerEndReason, detail: string) => void;
}

export interface Consumer {
  /** The broker queue this consumer reads (a resumable consumer's changes when it renews, see `ResumableConsumer`). */
  readonly queue: string;
  /**
   * Cancels the consumer and, for a transient one, then deletes its queue;
   * resolves when both are done. Idempotent: every call returns the same promise.
   */
  stopConsuming(): Promise<void>;
}

/**
 * A resumable consumer's delivery: it stays in the queue (unacknowledged)
 * until `settle()`, so it survives a cut between the gateway and the client.
 */
export interface HeldDelivery {
  /** The broker delivered it before, to an earlier consumer of the queue, which never settled it. */
  readonly redelivered: boolean;
  /**
   * Marks it for acknowledgement to the broker, which the consumer's next
   * `fence()` writes; idempotent. After the consumer renewed or ended, a no-op.
   * Settle oldest first: acknowledgements may be written cumulatively.
   */
  settle(): void;
}

export type ResumableHandler = (message: MqMessage, delivery: HeldDelivery) => void;

/** Why a resumable consumer replaced its queue (and the client must reload): the connection, the channel, or the backlog. */
export type RenewReason = ConsumerResyncReason | 'overflow';

/**
 * Deliveries a resumable consumer has unsettled at most: the broker's
 * prefetch, so the window its client confirms within. Each receipt takes a
 * round trip through the browser, so a small window stalls the stream when
 * that round trip is slow (on the bench box under load, fan-out to 100
 * resumable clients: 0.33× the default path at 100, 0.79× at 300, 1.2× at
 * 1000; on a quiet box no difference showed; bench/README.md). A resume
 * names every unconfirmed delivery, so 500 is also what fits the default
 * TOPICGATE_MAX_PAYLOAD_BYTES (config.ts checks the pair).
 */
export const DEFAULT_RESUMABLE_PREFETCH = 500;

export interface ResumableOptions {
  /** The queue name; the caller makes it unguessable (it is the client's claim). */
  queue: string;
  /** Called for a new queue name when the consumer must replace its queue (`onRenew`). */
  nextQueue: () => string;
  /** The broker deletes the queue once it has had no consumer for this long (x-expires). */
  expiresMs: number;
  /** Messages the queue may hold for the client; past it, new ones are refused and the consumer renews with `overflow`. */
  maxBacklog: number;
  /**
   * The queue was replaced by a new, empty one (`queue` now names it) because
   * what the old one held can no longer be promised: reconnect, channel
   * failure, or a backlog that reached `maxBacklog`. Deliveries before this
   * call belong to the old queue; the client must reload.
   */
  onRenew?: (reason: RenewReason) => void;
  onEnd?: (reason: ConsumerEndReason, detail: string) => void;
}

export interface ResumableConsumer extends Consumer {
  /** Cancels without deleting: unsettled deliveries go back to the queue, which waits `expiresMs` for a resume. */
  detach(): Promise<void>;
  /** Writes the settles made so far and resolves once the broker has processed them. */
  fence(): Promise<void>;
}

/**
 * `resumed`: consuming; the first deliveries are the ones the previous
 * consumer left unsettled (`redelivered`), then the ones that waited, then new
 * ones; `backlog` counts those waiting at resume. Otherwise the queue is gone
 * (`missing`), or was deleted because what it held is incomplete: it
 * overflowed, or the broker lost messages (`lost`), or another consumer would
 * not let go in time (`busy`).
 */
export type ResumeOutcome =
  | {
      kind: 'resumed';
      consumer: ResumableConsumer;
      backlog: number;
      /** Unsettled deliveries the broker sends it at most (its prefetch, less the marker). */
      window: number;
    }
  | { kind: 'missing' | 'overflow' | 'lost' | 'busy' };

export interface ConnectorEvents {
  /**
   * A connection lost (or not made when the connector was created) is back and
   * every consumer has been recovered: declared again and consuming, or ended
   * (onEnd). `isUp` turns true just before. Not emitted for the connection
   * `connect()` resolves with.
   */
  reconnected: [];
  /** The broker connection was lost; the connector is reconnecting. */
  down: [error: Error];
  /**
   * A message was dropped because its body cannot be relayed (docs/protocol.md
   * §11); emitted once per message, however many consumers it reached.
   */
  dropped: [reason: BodyDropReason];
}

export interface MqConnector extends EventEmitter<ConnectorEvents> {
  readonly kind: 'amqp' | 'embedded';
  /** True while operations can reach the broker and every consumer is consuming (after a reconnect: once `reconnected` is due). */
  readonly isUp: boolean;
  /** Publishes one message; resolves once the broker has taken it (publisher confirms on AMQP). */
  produce(key: string, body: PublishableBody): Promise<void>;
  /** Resolves once the queue is declared, bound and consuming. */
  startConsuming(pattern: string, handler: MessageHandler, options?: ConsumeOptions): Promise<Consumer>;
  /**
   * Whether a resumable consumer can be started now. On RabbitMQ each takes a
   * channel of its own, and a connection has at most channel_max of them.
   */
  readonly hasResumableCapacity: boolean;
  /** Declares a resumable queue (empty, bound) and consumes it. */
  startResumable(pattern: string, handler: ResumableHandler, options: ResumableOptions): Promise<ResumableConsumer>;
  /**
   * Consumes an existing resumable queue once no other consumer holds it
   * (waiting a bounded time for a departed gateway's consumer to go).
   */
  resumeConsuming(pattern: string, handler: ResumableHandler, options: ResumableOptions): Promise<ResumeOutcome>;
  /**
   * Deletes a resumable queue that will never be resumed (its resume was
   * refused for good), unless a consumer still holds it: then it stays with
   * its holder. Never fails: what it cannot delete, the window does.
   */
  abandonResumable(queue: string): Promise<void>;
  /** Stops every consumer (deleting transient queues) and disconnects. */
  close(): Promise<void>;
}

/** The broker cannot be reached right now; the caller should retry later. */
export class UnavailableError extends Error {
  override readonly name = 'UnavailableError';
}

/** The broker refused an operation or failed it (404, channel closed...); trying again may work. */
export class BrokerOperationError extends Error {
  override readonly name: string = 'BrokerOperationError';
  constructor(
    message: string,
    /** The broker's AMQP reply code, when it gave one (broker-errors.ts says what each means). */
    readonly replyCode?: number,
  ) {
    super(message);
  }
}

/**
 * The broker refused an operation and will refuse it again (ACCESS_REFUSED,
 * PRECONDITION_FAILED...) until an operator changes its permissions or
 * definitions: retrying only adds load.
 */
export class BrokerRefusedOperationError extends BrokerOperationError {
  override readonly name: string = 'BrokerRefusedOperationError';
}
