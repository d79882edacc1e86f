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
  /** The broker queue this consumer reads. */
  readonly queue: string;
  /**
   * Cancels the consumer and, for a transient one, then deletes its queue;
   * resolves when both are done. Idempotent: every call returns the same promise.
   */
  stopConsuming(): Promise<void>;
}

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
