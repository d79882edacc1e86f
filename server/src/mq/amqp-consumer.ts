/**
 * One consumer on RabbitMQ: its queue (declared and bound on an operation
 * channel) and its consumer on a pooled channel. Whatever happens, it ends
 * with its queue deleted (transient) and its pool slot returned.
 */
import type { ConsumeMessage } from 'amqplib';
import type { ReadonlyJsonObject } from '@topicgate/shared';
import type { Logger } from 'pino';
import type { ChannelSet, ConsumerSlot, PoolMember } from './amqp-channels.js';
import { checkTransition, isStopped, owedResync, type ConsumerState } from './amqp-consumer-state.js';
import { isNotFound, isPermanent, ReplyCode, replyCode } from './broker-errors.js';
import {
  BrokerOperationError,
  BrokerRefusedOperationError,
  UnavailableError,
  type ConsumeOptions,
  type Consumer,
  type ConsumerEndReason,
  type MessageHandler,
} from './connector.js';

/** What a consumer needs of its connector. */
export interface ConsumerHost {
  readonly exchange: string;
  readonly log: Logger;
  readonly heartbeatSeconds: number;
  /** The channels of the live connection, or null while disconnected. */
  readonly channels: ChannelSet | null;
  forget(consumer: AmqpConsumer): void;
  /**
   * Decodes and validates a delivery's body for `queue`; null when it cannot
   * be relayed (the host has reported that, once per message).
   */
  decode(msg: ConsumeMessage, queue: string): DecodedBody | null;
}

export interface DecodedBody {
  json: string;
  body: ReadonlyJsonObject;
}

export class AmqpConsumer implements Consumer, PoolMember {
  private slot: ConsumerSlot | null = null;
  private consumerTag: string | null = null;
  private state: ConsumerState = 'starting';
  /** Cancel, then delete: what stopping does, run once (entering 'ending'); stopConsuming() returns it. */
  private finishing: Promise<void> | null = null;
  /**
   * The declare or consume in flight (start, a restart after a reconnect, a
   * move after a channel loss). Stopping waits for it, so the consumer it may
   * still create is cancelled and the queue deleted after it, never before.
   * Not part of `state`: the first deliveries can make us 'consuming' before
   * the consume that brought them has settled.
   */
  private inFlight: Promise<void> | null = null;
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
  start(channels: ChannelSet): Promise<void> {
    const step = this.track(this.declareAndConsume(channels));
    // Only the first start leaves 'starting'; a restart's start is settled by restart().
    step.then(
      () => {
        if (this.state === 'starting') this.to('consuming');
      },
      () => {
        if (this.state !== 'starting') return;
        this.finishing = Promise.resolve(); // nothing was left behind to stop
        this.to('ended');
      },
    );
    return step;
  }

  private get stopped(): boolean {
    return isStopped(this.state);
  }

  /** Ended or ending (stopped, or ended by the broker). */
  get hasStopped(): boolean {
    return this.stopped;
  }

  private to(next: ConsumerState): void {
    try {
      checkTransition(this.queue, this.state, next);
    } catch (err) {
      if (process.env.VITEST) throw err;
      this.host.log.error({ queue: this.queue, from: this.state, to: next }, 'illegal consumer state transition refused (a bug)');
      return;
    }
    this.state = next;
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
      this.slot = null; // it belonged to the dead connection's channels
      this.consumerTag = null;
      this.to('restarting');
      try {
        await this.start(channels);
        this.payResync();
        return;
      } catch (err) {
        if (this.stopped) return; // unsubscribed meanwhile; start() left nothing behind
        if (this.host.channels !== channels) return; // the connection went again: the next reconnect restarts us
        if (!(err instanceof BrokerOperationError && err.replyCode === ReplyCode.ResourceLocked) || Date.now() > deadline) {
          this.end('broker_error', `could not declare the queue again after a reconnect: ${describe(err)}`);
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, Math.min(2000, 250 * 2 ** attempt)));
      }
    }
  }

  stopConsuming(): Promise<void> {
    if (!this.stopped) {
      this.host.forget(this);
      this.stop({ cancel: true, deleteQueue: !this.persistent });
    }
    return this.finishing!;
  }

  /**
   * PoolMember: our pooled channel died (a broker error, caused by us or by a
   * consumer beside us). We do not acknowledge, so whatever the broker had
   * sent down that channel is lost: consume again elsewhere, then say so.
   */
  onChannelLost(): void {
    if (this.stopped) return;
    this.slot?.release();
    this.slot = null;
    this.consumerTag = null;
    const channels = this.host.channels;
    if (!channels) return; // the reconnect restarts us
    this.to('moving');
    this.track(this.consume(channels)).then(
      () => this.payResync(),
      (err: unknown) => {
        if (this.stopped || this.host.channels !== channels) return; // stopped meanwhile, or the reconnect restarts us
        this.end(isNotFound(err, 'queue', this.queue) ? 'queue_deleted' : 'broker_error', `could not consume again after a channel loss: ${describe(err)}`);
      },
    );
  }

  /** Messages may have been lost (reconnect, channel loss): said once the queue is consuming again, before its first delivery since. */
  private payResync(): void {
    const reason = owedResync(this.state);
    if (!reason) return;
    this.to('consuming');
    if (!this.persistent) this.options.onResync?.(reason);
  }

  private async declareAndConsume(channels: ChannelSet): Promise<void> {
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
  }

  private track(step: Promise<void>): Promise<void> {
    const settled = step.catch(() => undefined);
    this.inFlight = settled;
    void settled.then(() => {
      if (this.inFlight === settled) this.inFlight = null;
    });
    return step;
  }

  /**
   * The order matters: the broker must have acknowledged the cancel before the
   * queue is deleted. A queue deleted while the broker handles the cancel
   * makes it answer cancel-ok ahead of deliveries already on their way, and
   * those arrive for a consumer amqplib has forgotten (see
   * tolerateStrayDeliveries). Deleting after cancel-ok also means the broker
   * sends no cancel of its own.
   */
  private async finish({ cancel, deleteQueue }: { cancel: boolean; deleteQueue: boolean }): Promise<void> {
    await this.inFlight;
    await this.leaveChannel(cancel);
    const channels = this.host.channels;
    if (deleteQueue && channels) await this.deleteQueue(channels);
  }

  private declareQueue(channels: ChannelSet): Promise<void> {
    return channels.withOperationChannel(async (ch) => {
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

  /** Starts consuming on a pooled channel; retried once on another if that channel failed meanwhile. */
  private async consume(channels: ChannelSet, retry = true): Promise<void> {
    const slot = await channels.reserveConsumerSlot();
    try {
      const { consumerTag } = await slot.channel.consume(this.queue, (msg) => this.onDelivery(slot, msg), { noAck: !this.persistent });
      this.slot = slot;
      this.consumerTag = consumerTag;
      slot.join(this, consumerTag, this.persistent);
    } catch (err) {
      slot.release();
      if (retry && !isNotFound(err, 'queue', this.queue) && this.host.channels === channels) return this.consume(channels, false);
      throw err;
    }
  }

  /** Off our pooled channel: cancelled first when asked (and the channel still works), then the slot given back. */
  private async leaveChannel(cancel: boolean): Promise<void> {
    const slot = this.slot;
    const tag = this.consumerTag;
    this.slot = null;
    this.consumerTag = null;
    if (!slot) return;
    // Cancel before giving the slot back: closing an emptied channel must not race the cancel.
    if (cancel && tag && slot.pooled.usable) await slot.channel.cancel(tag).catch(() => undefined);
    slot.release();
  }

  private async deleteQueue(channels: ChannelSet): Promise<void> {
    try {
      await channels.withOperationChannel((ch) => ch.deleteQueue(this.queue));
    } catch (err) {
      this.host.log.warn({ queue: this.queue, err: describe(err) }, 'could not delete a queue; it is exclusive and goes when the connection closes');
    }
  }

  /** The hot path's first step: validate once, hand over; acknowledge only for persistent consumers. */
  private onDelivery(slot: ConsumerSlot, msg: ConsumeMessage | null): void {
    if (msg === null) {
      // basic.cancel from the broker: the queue was deleted from outside.
      this.end('queue_deleted', `queue ${this.queue} was deleted on the broker`);
      return;
    }
    if (this.stopped) {
      // Between our cancel and its cancel-ok: nobody wants it. Give an acknowledging consumer's back to the queue.
      if (this.persistent) this.settle(slot, msg, 'requeue');
      return;
    }
    this.payResync(); // consume-ok and the first deliveries can arrive in one read, before the consume's promise settles
    const key = msg.fields.routingKey;
    const decoded = this.host.decode(msg, this.queue);
    if (decoded === null) {
      if (this.persistent) this.settle(slot, msg, 'reject');
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
        () => this.settle(slot, msg, 'ack'),
        (err: unknown) => (this.reportHandlerError(key, err), this.settle(slot, msg, 'ack')),
      );
    } else {
      this.settle(slot, msg, 'ack');
    }
  }

  /** Acks go to the channel that delivered, and only while it works: an unknown delivery tag closes a channel. */
  private settle(slot: ConsumerSlot, msg: ConsumeMessage, how: 'ack' | 'reject' | 'requeue'): void {
    if (!slot.pooled.usable) return;
    if (how === 'ack') slot.channel.ack(msg);
    else slot.channel.nack(msg, false, how === 'requeue');
  }

  private reportHandlerError(key: string, err: unknown): void {
    this.host.log.error({ queue: this.queue, key, err: describe(err) }, 'a message handler threw; the message is dropped');
  }

  private end(reason: ConsumerEndReason, detail: string): void {
    if (this.stopped) return;
    this.host.forget(this);
    // A queue deleted from outside took its consumer with it: nothing to cancel or delete.
    const gone = reason === 'queue_deleted';
    this.stop({ cancel: !gone, deleteQueue: !gone && !this.persistent });
    this.host.log.warn({ queue: this.queue, pattern: this.pattern, reason, detail }, 'consumer ended by the broker');
    this.options.onEnd?.(reason, detail);
  }

  private stop(how: { cancel: boolean; deleteQueue: boolean }): void {
    this.to('ending');
    this.finishing = this.finish(how);
    void this.finishing.then(
      () => this.to('ended'),
      () => this.to('ended'),
    );
  }

  private failure(what: string, err: unknown): Error {
    if (this.host.channels === null) return new UnavailableError('the broker connection was lost while subscribing; retry shortly');
    const message = `the broker refused to ${what} the queue for "${this.pattern}": ${describe(err)}`;
    return isPermanent(err) ? new BrokerRefusedOperationError(message, replyCode(err)) : new BrokerOperationError(message, replyCode(err));
  }
}

export function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
