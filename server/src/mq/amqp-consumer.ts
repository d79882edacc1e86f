/**
 * One consumer on RabbitMQ: its queue (declared and bound on an operation
 * channel) and its consumer on a pooled channel. Whatever happens, it ends
 * with its queue deleted (transient) and its pool slot returned.
 *
 * Three kinds (docs/protocol.md §12.2, §15.5): `transient` (an exclusive
 * queue, auto-ack), `persistent` (a shared durable queue, acked once
 * handled) and `resumable` (a durable queue with x-expires whose deliveries
 * stay unacknowledged until the client has them, behind a marker message
 * that tells a resume whether the broker lost what the queue held).
 */
import type { ConsumeMessage, Options } from 'amqplib';
import type { ReadonlyJsonObject } from '@topicgate/shared';
import type { Logger } from 'pino';
import type { ChannelSet, ConsumerSlot, PoolMember } from './amqp-channels.js';
import { checkTransition, isStopped, owedResync, type ConsumerState } from './amqp-consumer-state.js';
import { isNotFound, isPermanent, isQueueNodeDown, ReplyCode, replyCode } from './broker-errors.js';
import {
  BrokerOperationError,
  BrokerRefusedOperationError,
  UnavailableError,
  type ConsumeOptions,
  type ConsumerEndReason,
  type HeldDelivery,
  type MessageHandler,
  type ResumableConsumer,
  type ResumableHandler,
  type ResumableOptions,
} from './connector.js';
import { HeldMessages, isMarkerFor } from './amqp-held-messages.js';

/** What a consumer needs of its connector. */
export interface ConsumerHost {
  readonly exchange: string;
  readonly log: Logger;
  readonly heartbeatSeconds: number;
  /** The channels of the live connection, or null while disconnected. */
  readonly channels: ChannelSet | null;
  forget(consumer: AmqpConsumer): void;
  /** Deletes `queue` once its node is back (retried for at most `forMs`: then its x-expires has it). */
  deleteWhenNodeReturns(queue: string, forMs: number): void;
  /** Publishes a resumable queue's marker straight into it (non-persistent, confirmed). */
  publishMarker(queue: string): Promise<void>;
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

/** What a consumer is, with its handler and options. */
export type ConsumerSpec =
  | { kind: 'transient' | 'persistent'; handler: MessageHandler; options: ConsumeOptions }
  | { kind: 'resumable'; handler: ResumableHandler; options: ResumableOptions };

/** How often a resumable consumer whose client has stopped settling checks its queue's backlog. */
const BACKLOG_CHECK_MS = 1_000;

export class AmqpConsumer implements ResumableConsumer, PoolMember {
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
  /** Resumable: the unacknowledged deliveries of the current consume, marker included. */
  private held: HeldMessages | null = null;
  /** Resumable: called with the first delivery's verdict while a resume waits for the marker. */
  private markerCheck: ((intact: boolean) => void) | null = null;
  private backlogTimer: NodeJS.Timeout | null = null;
  private queueName: string;

  constructor(
    private readonly host: ConsumerHost,
    readonly pattern: string,
    queue: string,
    private readonly spec: ConsumerSpec,
  ) {
    this.queueName = queue;
  }

  get queue(): string {
    return this.queueName;
  }

  get options(): ConsumerSpec['options'] {
    return this.spec.options;
  }

  /** Persistent and resumable consumers acknowledge; a transient one is auto-ack. */
  private get acknowledging(): boolean {
    return this.spec.kind !== 'transient';
  }

  /** Declare, bind, consume. On failure nothing is left behind: no queue, no pool slot. */
  start(channels: ChannelSet, { declare = true } = {}): Promise<void> {
    const step = this.track(this.declareAndConsume(channels, { declare }));
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
      this.held = null; // the broker requeued them with the connection
      this.to('restarting');
      try {
        if (this.spec.kind === 'resumable') await this.track(this.replaceQueue(channels));
        else await this.start(channels);
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
      this.stop({ cancel: true, deleteQueue: this.spec.kind !== 'persistent' });
    }
    return this.finishing!;
  }

  /** Resumable: cancel, and give every unsettled delivery back to the queue, which waits for a resume. */
  detach(): Promise<void> {
    if (!this.stopped) {
      this.host.forget(this);
      this.stop({ cancel: true, deleteQueue: false });
    }
    return this.finishing!;
  }

  async fence(): Promise<void> {
    this.held?.flush();
    await this.slot?.fence();
  }

  /**
   * Resume: consume the queue as found and check that its first delivery is
   * the marker: `intact`; `lost` when it is not (the broker lost the
   * non-persistent messages it held); `busy` when nothing arrives within
   * `waitMs` (another consumer still holds the queue).
   */
  async resume(channels: ChannelSet, waitMs: number): Promise<'intact' | 'lost' | 'busy'> {
    const verdict = new Promise<'intact' | 'lost' | 'busy'>((resolve) => {
      const timer = setTimeout(() => resolve('busy'), waitMs);
      this.markerCheck = (intact) => (clearTimeout(timer), resolve(intact ? 'intact' : 'lost'));
    });
    await this.start(channels, { declare: false });
    const result = await verdict;
    this.markerCheck = null;
    return result;
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
    this.held = null; // the broker requeued them with the channel
    const channels = this.host.channels;
    if (!channels) return; // the reconnect restarts us
    this.to('moving');
    // A resumable queue now holds deliveries the client may already have, in an order only the old channel knew: start a new one.
    this.track(this.spec.kind === 'resumable' ? this.replaceQueue(channels) : this.consume(channels)).then(
      () => this.payResync(),
      (err: unknown) => {
        if (this.stopped || this.host.channels !== channels) return; // stopped meanwhile, or the reconnect restarts us
        this.end(isNotFound(err, 'queue', this.queue) ? 'queue_deleted' : 'broker_error', `could not consume again after a channel loss: ${describe(err)}`);
      },
    );
  }

  /**
   * A cancelled resumable queue that still exists (its node is down, or it
   * is back) cannot be trusted to hold what the client missed: renewed like
   * after a channel loss, the old one deleted once its node returns. One that
   * is gone was deleted on purpose: the subscription ends.
   */
  private async onResumableCancelled(): Promise<void> {
    const channels = this.host.channels;
    if (!channels) return; // the connection went too: the reconnect renews it
    const queue = this.queueName;
    const gone = await channels.withOperationChannel((ch) => ch.checkQueue(queue)).then(
      () => false,
      (err: unknown) => isNotFound(err, 'queue', queue),
    );
    // A reconnect or a renewal that began meanwhile replaces the queue itself: a second replacement would race it.
    if (this.stopped || this.queueName !== queue || this.state !== 'consuming' || this.host.channels !== channels) return;
    if (gone) return this.end('queue_deleted', `queue ${queue} was deleted on the broker`);
    this.host.log.warn({ queue }, 'the broker cancelled a resumable queue\'s consumer (its cluster node went down?); renewing it, and its client reloads');
    this.onChannelLost();
  }

  /** Messages may have been lost (reconnect, channel loss): said once the queue is consuming again, before its first delivery since. */
  private payResync(): void {
    const reason = owedResync(this.state);
    if (!reason) return;
    this.to('consuming');
    if (this.spec.kind === 'resumable') this.spec.options.onRenew?.(reason);
    else if (this.spec.kind === 'transient' && reason !== 'overflow') this.spec.options.onResync?.(reason);
  }

  private async declareAndConsume(channels: ChannelSet, { declare = true } = {}): Promise<void> {
    let step = 'declare';
    try {
      if (declare) {
        await this.declareQueue(channels);
        // The marker goes in first, ahead of anything the binding routes (§15.5).
        step = 'mark';
        if (this.spec.kind === 'resumable') await this.host.publishMarker(this.queueName);
        step = 'bind';
        await this.bind(channels);
      }
      step = 'consume from';
      await this.consume(channels);
    } catch (err) {
      // Only a queue we declared is ours to delete; a refused declare may be about someone else's.
      if (declare && step !== 'declare' && this.spec.kind !== 'persistent') await this.deleteQueue(channels);
      throw this.failure(step, err);
    }
  }

  /**
   * Resumable: what the queue holds can no longer be promised to match what
   * the client has (a dead channel or connection requeued deliveries, or the
   * backlog overflowed). Delete it and consume a new, empty one under a new
   * name: a client that missed the renewal and resumes with the old claim
   * finds it gone and reloads.
   */
  private async replaceQueue(channels: ChannelSet): Promise<void> {
    if (this.spec.kind !== 'resumable') return;
    const old = this.queueName;
    await this.leaveChannel(false);
    await this.deleteQueue(channels, old);
    this.queueName = this.spec.options.nextQueue();
    await this.declareAndConsume(channels);
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
      await ch.assertQueue(this.queueName, this.queueArguments());
    });
  }

  private queueArguments(): Options.AssertQueue {
    const spec = this.spec;
    if (spec.kind !== 'resumable') return spec.kind === 'transient' ? { exclusive: true, durable: false } : { durable: true };
    return resumableQueueOptions(spec.options.expiresMs, spec.options.maxBacklog);
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
      await channels.withOperationChannel((ch) => ch.bindQueue(this.queueName, exchange, this.pattern));
    } catch (err) {
      if (!isNotFound(err, 'exchange', exchange)) throw err;
      this.host.log.warn({ exchange }, 'the exchange is missing (deleted from outside?); declaring it again');
      await channels.withOperationChannel(async (ch) => {
        await ch.assertExchange(exchange, 'topic', { durable: true });
        await ch.bindQueue(this.queueName, exchange, this.pattern);
      });
    }
  }

  /** Starts consuming on a pooled channel; retried once on another if that channel failed meanwhile. */
  private async consume(channels: ChannelSet, retry = true): Promise<void> {
    const slot = this.spec.kind === 'resumable' ? await channels.reserveDedicatedSlot() : await channels.reserveConsumerSlot();
    const queue = this.queueName;
    // Set before the consume: its first deliveries can arrive in the same read as consume-ok.
    if (this.spec.kind === 'resumable') this.held = new HeldMessages(slot);
    try {
      const { consumerTag } = await slot.channel.consume(queue, (msg) => this.onDelivery(slot, msg), { noAck: !this.acknowledging });
      this.slot = slot;
      this.consumerTag = consumerTag;
      slot.join(this, consumerTag, this.acknowledging);
    } catch (err) {
      slot.release();
      if (retry && !isNotFound(err, 'queue', queue) && this.host.channels === channels) return this.consume(channels, false);
      throw err;
    }
  }

  /** Off our pooled channel: cancelled first when asked (and the channel still works), then the slot given back. */
  private async leaveChannel(cancel: boolean): Promise<void> {
    const slot = this.slot;
    const tag = this.consumerTag;
    this.slot = null;
    this.consumerTag = null;
    this.held?.close();
    this.held = null;
    this.clearBacklogCheck();
    if (!slot) return;
    // A resumable consumer's channel is its own: releasing closes it, which ends the consumer and
    // returns what it held to the queue in one step. A shared channel's consumer is cancelled
    // first: closing an emptied channel must not race the cancel.
    if (cancel && tag && !slot.pooled.dedicated && slot.pooled.usable) await slot.channel.cancel(tag).catch(() => undefined);
    slot.release();
  }

  private async deleteQueue(channels: ChannelSet, queue = this.queueName): Promise<void> {
    try {
      await channels.withOperationChannel((ch) => ch.deleteQueue(queue));
    } catch (err) {
      if (this.spec.kind === 'resumable' && isQueueNodeDown(err, queue)) {
        // Durable: it would come back with its node and fill until its x-expires. Delete it then.
        this.host.log.info({ queue }, 'the queue\'s node is down; deleting it once the node is back');
        this.host.deleteWhenNodeReturns(queue, this.spec.options.expiresMs);
        return;
      }
      const goes = this.spec.kind === 'resumable' ? 'the broker deletes it once unused for the resume window' : 'it is exclusive and goes when the connection closes';
      this.host.log.warn({ queue, err: describe(err) }, `could not delete a queue; ${goes}`);
    }
  }

  /** The hot path's first step: validate once, hand over; acknowledge only for persistent consumers. */
  private onDelivery(slot: ConsumerSlot, msg: ConsumeMessage | null): void {
    if (msg === null) {
      // basic.cancel from the broker: the queue was deleted from outside — or, on a cluster, the node holding it
      // went down (a resumed queue stays on the node it was declared on, not necessarily this connection's).
      if (this.spec.kind === 'resumable') void this.onResumableCancelled();
      else this.end('queue_deleted', `queue ${this.queueName} was deleted on the broker`);
      return;
    }
    if (this.stopped) {
      // Between our cancel and its cancel-ok: nobody wants it. Give an acknowledging consumer's back to the queue.
      if (this.acknowledging) this.settle(slot, msg, 'requeue');
      return;
    }
    this.payResync(); // consume-ok and the first deliveries can arrive in one read, before the consume's promise settles
    if (this.spec.kind === 'resumable') return this.onHeldDelivery(slot, msg, this.spec.handler);
    const key = msg.fields.routingKey;
    const decoded = this.host.decode(msg, this.queueName);
    if (decoded === null) {
      if (this.acknowledging) this.settle(slot, msg, 'reject');
      return;
    }
    let result: void | Promise<void> = undefined;
    try {
      result = this.spec.handler({ key, body: decoded.body, json: decoded.json, size: msg.content.length });
    } catch (err) {
      this.reportHandlerError(key, err);
    }
    if (!this.acknowledging) return;
    if (result instanceof Promise) {
      result.then(
        () => this.settle(slot, msg, 'ack'),
        (err: unknown) => (this.reportHandlerError(key, err), this.settle(slot, msg, 'ack')),
      );
    } else {
      this.settle(slot, msg, 'ack');
    }
  }

  /**
   * Resumable: the marker is held (never acked) so it returns to the head of
   * the queue with everything else unsettled; a first delivery that is not the
   * marker means the broker lost what the queue held. Every other delivery is
   * handed over unsettled.
   */
  private onHeldDelivery(slot: ConsumerSlot, msg: ConsumeMessage, handler: ResumableHandler): void {
    const held = this.held;
    if (!held || held.slot !== slot) return; // a delivery of a consume we have left: the channel requeues it
    if (isMarkerFor(msg, this.queueName)) {
      held.holdMarker(msg);
      this.markerCheck?.(true);
      return;
    }
    if (!held.hasMarker) {
      this.markerCheck?.(false);
      held.hold(msg); // returned or dropped with the rest
      return;
    }
    const key = msg.fields.routingKey;
    const decoded = this.host.decode(msg, this.queueName);
    if (decoded === null) {
      this.settle(slot, msg, 'reject');
      return;
    }
    const delivery: HeldDelivery = held.hold(msg);
    try {
      handler({ key, body: decoded.body, json: decoded.json, size: msg.content.length }, delivery);
    } catch (err) {
      this.reportHandlerError(key, err);
    }
    if (held.count >= slot.pooled.prefetch - 1) this.armBacklogCheck();
  }

  /**
   * The client stopped settling and the broker stopped sending: the backlog
   * grows in the queue, which refuses messages once full. Check it while the
   * window stays full; a full queue has refused messages, so renew it and
   * tell the client to reload (`overflow`).
   */
  private armBacklogCheck(): void {
    if (this.backlogTimer || this.spec.kind !== 'resumable') return;
    const { maxBacklog } = this.spec.options;
    this.backlogTimer = setInterval(() => {
      const channels = this.host.channels;
      const held = this.held;
      if (!channels || !held || this.state !== 'consuming' || !this.slot) return;
      if (held.count < this.slot.pooled.prefetch - 1) return this.clearBacklogCheck();
      channels.withOperationChannel((ch) => ch.checkQueue(this.queueName)).then(
        ({ messageCount }) => {
          if (messageCount < maxBacklog || this.state !== 'consuming' || this.host.channels !== channels) return;
          this.clearBacklogCheck();
          this.host.log.warn({ queue: this.queueName, backlog: messageCount }, 'a resumable subscription\'s backlog is full (its client is too slow); replacing its queue and telling the client to reload');
          this.to('renewing');
          this.track(this.replaceQueue(channels)).then(
            () => this.payResync(),
            (err: unknown) => {
              if (this.stopped || this.host.channels !== channels) return;
              this.end('broker_error', `could not replace an overflowing queue: ${describe(err)}`);
            },
          );
        },
        () => undefined, // the next check, or the channel-loss path, deals with it
      );
    }, BACKLOG_CHECK_MS);
    this.backlogTimer.unref();
  }

  private clearBacklogCheck(): void {
    if (this.backlogTimer) clearInterval(this.backlogTimer);
    this.backlogTimer = null;
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
    this.stop({ cancel: !gone, deleteQueue: !gone && this.spec.kind !== 'persistent' });
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

/**
 * How a resumable subscription's queue is declared (also what the bench's
 * `amqp-held` consumers declare, to measure the broker's share of its cost).
 * Durable, not exclusive: it must outlive our connection. x-expires lets the
 * broker delete it once unused (even after kill -9); reject-publish keeps what
 * it holds a gapless prefix; a single active consumer means two gateways
 * resuming one claim can never split its messages.
 */
export function resumableQueueOptions(expiresMs: number, maxBacklog: number): Options.AssertQueue {
  return {
    durable: true,
    arguments: { 'x-expires': expiresMs, 'x-max-length': maxBacklog, 'x-overflow': 'reject-publish', 'x-single-active-consumer': true },
  };
}
