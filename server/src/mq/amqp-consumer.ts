/**
 * One consumer on RabbitMQ: its queue (declared and bound on an operation
 * channel) and its consumer on a pooled channel. Whatever happens, it ends
 * with its queue deleted (transient) and its pool slot returned.
 */
import type { ConsumeMessage } from 'amqplib';
import { BodyError, type JsonObject } from '@topicgate/shared';
import type { Logger } from 'pino';
import type { ChannelSet, PoolMember, PooledChannel } from './amqp-channels.js';
import { BrokerOperationError, UnavailableError, type ConsumeOptions, type Consumer, type ConsumerEndReason, type MessageHandler } from './connector.js';

const NOT_FOUND = 404;

/** What a consumer needs of its connector. */
export interface ConsumerHost {
  readonly exchange: string;
  readonly log: Logger;
  readonly heartbeatSeconds: number;
  /** The channels of the live connection, or null while disconnected. */
  readonly channels: ChannelSet | null;
  forget(consumer: AmqpConsumer): void;
  /** Validates and parses a body; throws `BodyError` when it is not a JSON object. */
  decode(content: Buffer): DecodedBody;
}

export interface DecodedBody {
  json: string;
  body: JsonObject;
}

export class AmqpConsumer implements Consumer, PoolMember {
  private pooled: PooledChannel | null = null;
  private consumerTag: string | null = null;
  private stopped = false;
  /** The re-declare in flight after a reconnect: an unsubscribe waits for it, so the queue is gone when it resolves. */
  private restarting: Promise<void> | null = null;
  private readonly persistent: boolean;

  constructor(
    private readonly host: ConsumerHost,
    readonly pattern: string,
    readonly queue: string,
    private readonly handler: MessageHandler,
    readonly options: ConsumeOptions,
  ) {
    this.persistent = options.persistentName !== undefined;
  }

  /** Declare, bind, consume. On failure nothing is left behind: no queue, no pool slot. */
  async start(channels: ChannelSet): Promise<void> {
    let step = 'declare';
    try {
      await this.declareQueue(channels);
      step = 'bind';
      await this.bind(channels);
      step = 'consume from';
      await this.consume(channels);
    } catch (err) {
      // Only a queue we declared is ours to delete; a refused declare may be about someone else's.
      if (step !== 'declare' && !this.persistent) await this.deleteQueue(channels);
      throw this.failure(step, err);
    }
    // Stopped meanwhile (an unsubscribe racing the re-declare after a reconnect):
    // its delete may have run before our declare, so the queue is ours to delete.
    if (this.stopped && !this.persistent) await this.deleteQueue(channels);
  }

  /**
   * After a reconnect: same queue name, new channels. If the broker has not yet
   * noticed that our previous connection is dead (a silent network failure), it
   * still owns the exclusive queue and refuses with RESOURCE_LOCKED; that clears
   * once the broker's heartbeat check drops the old connection.
   */
  async restart(channels: ChannelSet): Promise<void> {
    const deadline = Date.now() + Math.max(3 * this.host.heartbeatSeconds, 5) * 1000;
    for (let attempt = 0; ; attempt++) {
      if (this.stopped || this.host.channels !== channels) return;
      this.pooled = null;
      this.consumerTag = null;
      try {
        this.restarting = this.start(channels);
        await this.restarting;
        if (!this.persistent && !this.stopped) this.options.onResync?.();
        return;
      } catch (err) {
        if (this.stopped) return; // unsubscribed meanwhile; start() left nothing behind
        if (!/RESOURCE_LOCKED/.test(describe(err)) || Date.now() > deadline) {
          this.end('broker_error', `could not declare the queue again after a reconnect: ${describe(err)}`);
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, Math.min(2000, 250 * 2 ** attempt)));
      } finally {
        this.restarting = null;
      }
    }
  }

  async stopConsuming(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.host.forget(this);
    const channels = this.host.channels;
    this.leavePool(true);
    if (!this.persistent && channels) await this.deleteQueue(channels);
    await this.restarting?.catch(() => undefined); // it deletes what it declared once it sees us stopped
  }

  /** PoolMember: our pooled channel was closed by a broker error caused by someone else's operation. */
  onChannelLost(): void {
    if (this.stopped) return;
    this.pooled = null;
    this.consumerTag = null;
    const channels = this.host.channels;
    if (!channels) return; // the reconnect restarts us
    this.consume(channels).catch((err: unknown) => {
      this.end(isNotFound(err, 'queue', this.queue) ? 'queue_deleted' : 'broker_error', `could not consume again after a channel loss: ${describe(err)}`);
    });
  }

  private async declareQueue(channels: ChannelSet): Promise<void> {
    await channels.withOperationChannel(async (ch) => {
      await ch.assertQueue(this.queue, this.persistent ? { durable: true } : { exclusive: true, durable: false });
    });
  }

  /**
   * A bind that fails because the exchange is gone (deleted from outside)
   * declares the exchange and binds again: declaring is always safe, and a
   * missing exchange would otherwise fail every subscribe. A 404 about our
   * queue (deleted meanwhile) is no reason to touch the exchange.
   */
  private async bind(channels: ChannelSet): Promise<void> {
    const { exchange } = this.host;
    try {
      await channels.withOperationChannel((ch) => ch.bindQueue(this.queue, exchange, this.pattern));
    } catch (err) {
      if (!isNotFound(err, 'exchange', exchange)) throw err;
      this.host.log.warn({ exchange }, 'the exchange is missing (deleted from outside?); declaring it again');
      await channels.withOperationChannel(async (ch) => {
        await ch.assertExchange(exchange, 'topic', { durable: true });
        await ch.bindQueue(this.queue, exchange, this.pattern);
      });
    }
  }

  /** Starts consuming on a pooled channel; retried once elsewhere if another consumer's error closed that channel. */
  private async consume(channels: ChannelSet, retry = true): Promise<void> {
    const pooled = await channels.reserveConsumerSlot();
    try {
      const { consumerTag } = await pooled.channel.consume(this.queue, (msg) => this.onDelivery(pooled, msg), { noAck: !this.persistent });
      this.pooled = pooled;
      this.consumerTag = consumerTag;
      pooled.members.add(this);
    } catch (err) {
      channels.releaseSlot(pooled);
      if (retry && !isNotFound(err, 'queue', this.queue) && this.host.channels === channels) return this.consume(channels, false);
      throw err;
    }
    if (this.stopped) this.leavePool(true); // stopped while the consume was in flight
  }

  private leavePool(cancel: boolean): void {
    const pooled = this.pooled;
    const tag = this.consumerTag;
    this.pooled = null;
    this.consumerTag = null;
    if (!pooled) return;
    pooled.members.delete(this);
    const channels = this.host.channels;
    if (cancel && pooled.alive && tag) {
      // Cancel before giving the slot back: closing an empty channel must not race the cancel.
      void pooled.channel.cancel(tag).catch(() => undefined).finally(() => channels?.releaseSlot(pooled));
    } else {
      channels?.releaseSlot(pooled);
    }
  }

  private async deleteQueue(channels: ChannelSet): Promise<void> {
    try {
      await channels.withOperationChannel((ch) => ch.deleteQueue(this.queue));
    } catch (err) {
      this.host.log.warn({ queue: this.queue, err: describe(err) }, 'could not delete a queue; it is exclusive and goes when the connection closes');
    }
  }

  /** The hot path's first step: validate once, hand over; acknowledge only for persistent consumers. */
  private onDelivery(pooled: PooledChannel, msg: ConsumeMessage | null): void {
    if (msg === null) {
      // basic.cancel from the broker: the queue was deleted from outside.
      this.end('queue_deleted', `queue ${this.queue} was deleted on the broker`);
      return;
    }
    const key = msg.fields.routingKey;
    let decoded: DecodedBody;
    try {
      decoded = this.host.decode(msg.content);
    } catch (err) {
      this.host.log.warn(
        { queue: this.queue, key, err: err instanceof BodyError ? err.message : describe(err) },
        'dropped a message whose body is not a JSON object; fix its publisher',
      );
      if (this.persistent) this.settle(pooled, msg, false);
      return;
    }
    let result: void | Promise<void> = undefined;
    try {
      result = this.handler({ key, body: decoded.body, json: decoded.json, size: msg.content.length });
    } catch (err) {
      this.reportHandlerError(key, err);
    }
    if (!this.persistent) return;
    if (result instanceof Promise) {
      result.then(
        () => this.settle(pooled, msg, true),
        (err: unknown) => (this.reportHandlerError(key, err), this.settle(pooled, msg, true)),
      );
    } else {
      this.settle(pooled, msg, true);
    }
  }

  /** Acks go to the channel that delivered, and only while it lives: an unknown delivery tag closes a channel. */
  private settle(pooled: PooledChannel, msg: ConsumeMessage, ok: boolean): void {
    if (!pooled.alive) return;
    if (ok) pooled.channel.ack(msg);
    else pooled.channel.nack(msg, false, false);
  }

  private reportHandlerError(key: string, err: unknown): void {
    this.host.log.error({ queue: this.queue, key, err: describe(err) }, 'a message handler threw; the message is dropped');
  }

  private end(reason: ConsumerEndReason, detail: string): void {
    if (this.stopped) return;
    this.stopped = true;
    this.host.forget(this);
    this.leavePool(reason !== 'queue_deleted');
    const channels = this.host.channels;
    if (!this.persistent && reason !== 'queue_deleted' && channels) void this.deleteQueue(channels);
    this.host.log.warn({ queue: this.queue, pattern: this.pattern, reason, detail }, 'consumer ended by the broker');
    this.options.onEnd?.(reason, detail);
  }

  private failure(what: string, err: unknown): Error {
    if (this.host.channels === null) return new UnavailableError('the broker connection was lost while subscribing; retry shortly');
    return new BrokerOperationError(`the broker refused to ${what} the queue for "${this.pattern}": ${describe(err)}`);
  }
}

/** The AMQP reply code of a channel or connection error (amqplib puts it on `code`). */
function amqpCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

/**
 * A 404 about this queue or exchange: RabbitMQ's reply text names it ("no
 * queue 'q' in vhost '/'"). Not a channel closed by somebody else's 404.
 */
function isNotFound(err: unknown, kind: 'queue' | 'exchange', name: string): boolean {
  return amqpCode(err) === NOT_FOUND && describe(err).includes(`no ${kind} '${name}'`);
}

export function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
