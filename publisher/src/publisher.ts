/**
 * `createPublisher<Topics>()`: publishes JSON messages to the gateway's topic
 * exchange, typed by the same topic map as the browser SDK, each resolved
 * only once the broker confirmed it. While the broker is unreachable,
 * messages wait in a bounded buffer and go out in publish order once a link
 * is back (types.ts lists every option; outbox.ts keeps the order).
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import {
  encodeBody,
  routingKeyError,
  type AnyTopics,
  type KeyBody,
  type PublishableBody,
  type TopicKeys,
  type TopicParams,
  type TopicTemplate,
} from '@topicgate/shared';
import { amqpTransport } from './amqp-transport.js';
import { backoffDelay } from './backoff.js';
import { PublishErrorCode } from './codes.js';
import type { BodyOf, LogAppenderOptionsArg, LogTemplate, ResourceOptions, ResourceParams } from './conventions.js';
import { BufferFullError, describeError, PublishError } from './errors.js';
import { LogAppender } from './log-appender.js';
import { Outbox, type Pending } from './outbox.js';
import { ResourcePublisher, type Send } from './resource.js';
import { topicKey } from './topic-key.js';
import type { CloseOptions, OutgoingMessage, PublisherEvents, PublisherOptions, PublisherTransport, TransportLink } from './types.js';

/** setTimeout's longest delay; a longer one fires at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * What `publish(key, body)` takes for key `K`: the body of its template in
 * the topic map; any JSON object (`Date`s allowed) without a map.
 */
export type PublishBody<T, K extends string> = string extends TopicTemplate<T> ? PublishableBody : KeyBody<T, K>;

export class Publisher<T extends object = AnyTopics> extends EventEmitter<PublisherEvents> {
  readonly #transport: PublisherTransport;
  readonly #maxBuffered: number;
  readonly #delays: { initial: number; max: number };
  readonly #outbox = new Outbox();
  #link: TransportLink | null = null;
  #connecting = false;
  #retryTimer: NodeJS.Timeout | null = null;
  /**
   * Failed connects (or links) in a row. Reset by a confirm, or by a link
   * that stays up as long as the longest delay (an idle publisher confirms
   * nothing): a link that fails at once does not reconnect in a hot loop, and
   * the next outage after a long healthy spell starts from the shortest delay.
   */
  #attempt = 0;
  #stableTimer: NodeJS.Timeout | null = null;
  /** Since when, and why, no link is up: what a full buffer's error tells. */
  #down: { since: Date; error: Error } | null = null;
  #closing: Promise<void> | null = null;
  /** No more connecting: close() has given up on what was pending. */
  #stopped = false;

  constructor(options: PublisherOptions) {
    super();
    this.#transport = options.transport ?? amqpTransport(options);
    this.#maxBuffered = options.maxBuffered ?? 10_000;
    if (!Number.isSafeInteger(this.#maxBuffered) || this.#maxBuffered < 1) throw new TypeError(`createPublisher: maxBuffered must be a positive integer, got ${options.maxBuffered}`);
    this.#delays = options.reconnectDelayMs ?? { initial: 200, max: 10_000 };
    const { initial, max } = this.#delays;
    if (!(initial > 0 && initial <= max && max <= MAX_TIMER_MS)) {
      throw new TypeError(`createPublisher: reconnectDelayMs must have 0 < initial ≤ max ≤ ${MAX_TIMER_MS} (setTimeout's longest delay), got { initial: ${initial}, max: ${max} }`);
    }
    this.#connect();
  }

  /** True while a link to the broker is up. */
  get connected(): boolean {
    return this.#link !== null;
  }

  /** Messages published and not yet confirmed (waiting for a link, or in flight). */
  get buffered(): number {
    return this.#outbox.size;
  }

  /**
   * Publishes `body` under routing key `key`, with `message_id`, `timestamp`
   * and `content_type: application/json`. Resolves once the broker confirmed
   * it; while the broker is unreachable it waits in the buffer. Rejects with
   * a `TypeError` for an invalid key or body, a `BufferFullError` when
   * `maxBuffered` messages are already waiting, a `PublishError` `closed`
   * after `close()`, `not_confirmed` when the broker refused it.
   *
   * @example
   * await publisher.publish(`builds.${build.id}.finished`, build); // body typed by 'builds.{id}.finished'
   */
  publish<K extends TopicKeys<T>>(key: K, body: PublishBody<T, K>): Promise<void> {
    return this.#publish(key, body as PublishableBody);
  }

  /**
   * The announcements of one resource, identified by the parameters of its
   * templates: each change gets the next `version`, a deletion too, and
   * nothing follows a deletion (resource.ts).
   *
   * @example
   * const build = publisher.resource({ id: 42 });
   * await build.update('builds.{id}.started', { ...row });      // version 1
   * await build.delete('builds.{id}.deleted', { id: 42, deleted: true }); // version 2
   */
  resource<P extends ResourceParams>(params: P, options: ResourceOptions = {}): ResourcePublisher<T, keyof P & string> {
    return new ResourcePublisher<T, keyof P & string>(this.#send, { ...params }, options.version);
  }

  /**
   * The appends of one log: `{ first, lines, ...fields }`, `first`
   * continuing from one append to the next (log-appender.ts).
   *
   * @example
   * const log = publisher.logAppender('logs.{id}.append', { id: 42 }, { fields: { build: 42 } });
   * await log.append(['compiling…']);
   */
  logAppender<K extends LogTemplate<T>>(template: K, params: TopicParams<K>, ...[options]: LogAppenderOptionsArg<BodyOf<T, K>>): LogAppender {
    const key = topicKey(template, params);
    return new LogAppender(this.#send, key, (options?.fields ?? {}) as Record<string, unknown>, options?.first);
  }

  /**
   * Stops taking messages and waits up to `timeoutMs` for the broker to
   * confirm what is pending; what is still unconfirmed then fails with
   * `closed`. Then disconnects. Idempotent.
   */
  close(options: CloseOptions = {}): Promise<void> {
    return (this.#closing ??= this.#close(options.timeoutMs ?? 10_000));
  }

  #publish(key: string, body: PublishableBody): Promise<void> {
    const sent = this.#send(key, body);
    return sent.taken ? sent.confirmed : Promise.reject(sent.error);
  }

  /** Takes the message into the buffer, or says why not; for the helpers too (without the map's types: they checked theirs). */
  readonly #send: Send = (key, body) => {
    if (this.#closing) {
      return { taken: false, error: new PublishError(PublishErrorCode.Closed, `publish("${key}") after close(): this publisher is closed; create a new one`) };
    }
    const keyError = routingKeyError(key);
    if (keyError) return { taken: false, error: new TypeError(keyError) };
    let content: string;
    try {
      content = encodeBody(body);
    } catch (error) {
      return { taken: false, error };
    }
    if (this.#outbox.size >= this.#maxBuffered) return { taken: false, error: this.#bufferFull(key) };
    const message: OutgoingMessage = { key, body, content, messageId: randomUUID(), timestamp: Math.floor(Date.now() / 1000) };
    const confirmed = this.#outbox.add(message);
    this.#pump();
    return { taken: true, confirmed };
  };

  #bufferFull(key: string): BufferFullError {
    const why = this.#down
      ? `the broker has been unreachable since ${this.#down.since.toISOString()} (${this.#down.error.message})`
      : 'the broker confirms more slowly than messages are published';
    return new BufferFullError(
      this.#maxBuffered,
      `the message to "${key}" was not published: ${this.#maxBuffered} messages already wait for a broker confirm (maxBuffered), because ${why}. ` +
        `Retry it later or publish more slowly, raise maxBuffered if bursts are expected, and check ${this.#transport.description}.`,
    );
  }

  /** Sends everything waiting, in order, on the current link. */
  #pump(): void {
    const link = this.#link;
    if (!link) return;
    for (let pending = this.#outbox.take(); pending; pending = this.#outbox.take()) {
      let sent: Promise<void>;
      try {
        sent = link.send(pending.message);
      } catch (err) {
        sent = Promise.reject(err);
      }
      const p: Pending = pending;
      sent.then(
        () => {
          this.#attempt = 0;
          this.#outbox.confirm(p);
        },
        (err: unknown) => {
          if (err instanceof PublishError && err.code === PublishErrorCode.NotConfirmed) this.#outbox.fail(p, err);
          else this.#linkFailed(link, asError(err));
        },
      );
      // A send may fail the link synchronously: stop, what was taken is requeued.
      if (this.#link !== link) return;
    }
  }

  #connect(): void {
    if (this.#stopped || this.#link || this.#connecting || this.#retryTimer) return;
    this.#connecting = true;
    this.#transport.open().then(
      (link) => {
        this.#connecting = false;
        if (this.#stopped) return void link.close().catch(() => undefined);
        this.#link = link;
        this.#down = null;
        link.onFailure((error) => this.#linkFailed(link, error));
        if (this.#link !== link) return; // failed while registering
        this.#stableTimer = setTimeout(() => {
          this.#stableTimer = null;
          this.#attempt = 0;
        }, this.#delays.max);
        this.#stableTimer.unref();
        this.emit('connected', link.where);
        this.#pump();
      },
      (err: unknown) => {
        this.#connecting = false;
        const error = asError(err);
        this.#down = { since: this.#down?.since ?? new Date(), error };
        this.#retryLater(error);
      },
    );
  }

  #linkFailed(link: TransportLink, error: Error): void {
    if (this.#link !== link) return;
    this.#link = null;
    this.#clearStableTimer();
    void link.close().catch(() => undefined);
    this.#outbox.requeueSent();
    this.#down = { since: new Date(), error };
    this.emit('disconnected', error);
    this.#retryLater(error);
  }

  #clearStableTimer(): void {
    if (this.#stableTimer) clearTimeout(this.#stableTimer);
    this.#stableTimer = null;
  }

  #retryLater(error: Error): void {
    if (this.#stopped) return;
    const delay = backoffDelay(this.#attempt++, this.#delays.initial, this.#delays.max);
    this.emit('retrying', error, delay);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      this.#connect();
    }, delay);
  }

  async #close(timeoutMs: number): Promise<void> {
    if (this.#outbox.size > 0 && timeoutMs > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.#outbox.whenEmpty(), new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
      clearTimeout(timer);
    }
    this.#stopped = true;
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    this.#clearStableTimer();
    const down = this.#down ? ` (the broker was unreachable: ${this.#down.error.message})` : '';
    this.#outbox.failAll(
      (pending) =>
        new PublishError(
          PublishErrorCode.Closed,
          pending.state === 'sent'
            ? `close() gave up after ${timeoutMs} ms waiting for the broker to confirm the message to "${pending.message.key}": it may or may not have been delivered${down}`
            : `close() gave up after ${timeoutMs} ms before the message to "${pending.message.key}" could be sent: it was not published${down}`,
        ),
    );
    const link = this.#link;
    this.#link = null;
    await link?.close().catch(() => undefined);
  }
}

/**
 * A publisher of the application's topic map `T` (the same interface the
 * browser SDK's `createClient<T>` takes). It connects at once and keeps
 * reconnecting until `close()`.
 *
 * @example
 * const publisher = createPublisher<Topics>({ urls: process.env.TOPICGATE_AMQP_URL, exchange: 'topicgate' });
 * await publisher.publish('builds.42.finished', build);
 * await publisher.close();
 */
export function createPublisher<T extends object = AnyTopics>(options: PublisherOptions): Publisher<T> {
  return new Publisher<T>(options);
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(describeError(err));
}
