/**
 * Every public option, event and seam of the publisher. A reader of this file
 * knows the whole surface; `publisher.ts` is how it behaves.
 */
import type { PublishableBody } from '@topicgate/shared';

export interface PublisherOptions {
  /**
   * RabbitMQ URLs, tried in turn on every (re)connect starting with the last
   * one that worked: one URL, a list, or a comma-separated string as
   * `TOPICGATE_AMQP_URL` takes it. Required unless `transport` is given.
   */
  urls?: string | readonly string[];
  /** The gateway's topic exchange (`TOPICGATE_EXCHANGE`). Default: 'topicgate'. */
  exchange?: string;
  /** Declare the exchange on connect, exactly as the gateway does (durable topic); false for a user without configure permission. Default: true. */
  declareExchange?: boolean;
  /** The connection's name in `rabbitmqctl list_connections` and the management UI. Default: 'topicgate publisher'. */
  connectionName?: string;
  /** AMQP heartbeat in seconds: a silent broker is noticed within about two. A `heartbeat` in a URL wins. Default: 15. */
  heartbeatSeconds?: number;
  /** Publish with delivery mode 2, so that durable queues keep messages across a broker restart. Default: true. */
  persistent?: boolean;
  /**
   * Messages held without a broker confirm (waiting for a connection, or sent
   * and unconfirmed); past it `publish()` rejects with `BufferFullError`
   * instead of growing without bound. Default: 10000.
   */
  maxBuffered?: number;
  /** Reconnect backoff, with jitter: `initial` doubling up to `max`, in ms; from `initial` again once a link has stayed up for `max` or had a message confirmed. Default: { initial: 200, max: 10000 }. */
  reconnectDelayMs?: { initial: number; max: number };
  /**
   * Where messages go instead of RabbitMQ through amqplib (which `urls`
   * configures): an in-process broker, a test double, a decorator. Default: AMQP.
   */
  transport?: PublisherTransport;
}

/** One message as it leaves the publisher: what every transport gets. */
export interface OutgoingMessage {
  readonly key: string;
  /** The body as published (for a transport that encodes it itself). */
  readonly body: PublishableBody;
  /** The body's JSON text (`encodeBody`: `Date`s as epoch seconds): what goes on the wire. */
  readonly content: string;
  /** Unique per message, and kept when the message is sent again after a reconnect: consumers can drop copies by it. */
  readonly messageId: string;
  /** When `publish()` was called: seconds since the UNIX epoch (AMQP's `timestamp` property). */
  readonly timestamp: number;
}

/**
 * Where a publisher sends messages. The publisher owns ordering, buffering,
 * retries and backoff; a transport only opens links and sends on them.
 */
export interface PublisherTransport {
  /** Where it sends, for error messages (never with a password): "RabbitMQ at amqp://…". */
  readonly description: string;
  /** Opens a link; rejects when none can be made now (the publisher retries with backoff). */
  open(): Promise<TransportLink>;
}

/** One connection's worth of sending. Once it fails it is never used again: the publisher opens another. */
export interface TransportLink {
  /** Where it is connected, for the `connected` event (never with a password): the URL that answered. */
  readonly where: string;
  /**
   * Sends one message; resolves once the broker confirmed it. Rejects with a
   * `PublishError` of code `not_confirmed` when the broker refused this
   * message (it is not sent again); any other rejection means the link
   * failed, and the message is sent again on the next link.
   */
  send(message: OutgoingMessage): Promise<void>;
  /** Calls `listener` once when the link fails (connection or channel lost). */
  onFailure(listener: (error: Error) => void): void;
  /** Closes the link; resolves once closed. */
  close(): Promise<void>;
}

export interface PublisherEvents {
  /** A link is up (`where`: the URL that answered); buffered messages follow. */
  connected: [where: string];
  /** The link failed; unconfirmed messages will be sent again once a new one is up. */
  disconnected: [error: Error];
  /** No link is up (a connection attempt or the link failed, `error` says why); the next attempt starts in `delayMs`. */
  retrying: [error: Error, delayMs: number];
}

export interface CloseOptions {
  /**
   * Longest wait for the broker to confirm what is buffered or in flight
   * (reconnecting if need be); what is still unconfirmed then is failed
   * with `closed`. 0: fail it at once. Default: 10000.
   */
  timeoutMs?: number;
}
