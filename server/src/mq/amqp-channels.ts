/**
 * The channels of one AMQP connection, and what each may be used for.
 *
 * Broker errors close the channel they happen on, and amqplib fails every
 * operation pending on it. So channels are arranged by how likely their
 * operations are to fail:
 *
 * - operations (declare, bind, delete) run on leased channels, one operation
 *   at a time, so an error fails only the operation that caused it. A few idle
 *   ones are kept open so most subscribes pay no channel round trips.
 * - consumers share pooled channels, up to `consumersPerChannel` each: a
 *   channel per subscription would cost broker memory and hit the broker's
 *   channel_max (2047) at a few thousand subscriptions. Pooled channels only
 *   run consume and cancel; a resumable consumer gets one of its own
 *   (`reserveDedicatedSlot`). A pooled channel is unusable from its first error,
 *   and when it closes its consumers move to another channel and are told
 *   they may have lost messages: consumers do not acknowledge, so whatever
 *   was in flight on the dead channel is gone.
 * - the publisher is one confirm channel.
 *
 * Every channel has an `error` listener: in amqplib an unhandled channel error
 * takes the whole connection down, and so would the frames the broker still
 * sends on a channel it has closed (amqp-trailing-frames.ts). A ChannelSet
 * lives and dies with its connection.
 */
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage } from 'amqplib';
import type { Logger } from 'pino';
import { guardTrailingFrames, type TrailingFrameGuard } from './amqp-trailing-frames.js';

/** Channels kept free for shared consumer channels when deciding whether a dedicated one fits. */
const SHARED_CHANNEL_HEADROOM = 16;

export interface ChannelSetOptions {
  /** Consumers per pooled channel. */
  consumersPerChannel: number;
  /** Idle operation channels kept open. */
  warmOperationChannels: number;
  /** Operation channels open at once; further operations wait. Bounds channel use in bursts (a thousand sockets closing). */
  maxOperationChannels: number;
  /** Unacknowledged deliveries per acknowledging (persistent, resumable) consumer. */
  prefetch: number;
}

/** Told when the pooled channel it consumes on was closed by the broker. */
export interface PoolMember {
  readonly queue: string;
  onChannelLost(): void;
}

/**
 * `open`: takes new consumers. `failed`: the broker (or amqplib) reported an
 * error on it; it is closing and its consumers will be moved. `retired`: we
 * closed it because its last consumer left.
 */
type PooledChannelState = 'open' | 'failed' | 'retired';

export class PooledChannel {
  state: PooledChannelState = 'open';
  /** Slots leased: consumers on this channel plus consumes in flight. */
  leased = 0;
  readonly members = new Set<PoolMember>();
  /** Tags of acknowledging consumers started here: a stray delivery for one must be requeued, not dropped. */
  readonly ackModeTags = new Set<string>();

  constructor(
    readonly channel: Channel,
    /** Its basic.qos: unacknowledged deliveries per acknowledging consumer. */
    readonly prefetch: number,
    /** One resumable consumer's own channel, never shared (see `reserveDedicatedSlot`). */
    readonly dedicated = false,
  ) {}

  get usable(): boolean {
    return this.state === 'open';
  }
}

/**
 * One consumer's place on a pooled channel, leased by `reserveConsumerSlot`.
 * Released exactly once whatever the path, so a channel's lease count cannot
 * drift and leave a channel open with nobody on it.
 */
export class ConsumerSlot {
  private released = false;
  private member: PoolMember | null = null;

  constructor(
    readonly pooled: PooledChannel,
    private readonly onRelease: (pooled: PooledChannel) => void,
  ) {}

  get channel(): Channel {
    return this.pooled.channel;
  }

  /**
   * Resolves once the broker has processed everything sent on this channel
   * before the call (acks included): a channel's methods are handled in
   * order, so the reply to a no-op synchronous method (basic.qos with the
   * channel's own prefetch) fences what preceded it.
   */
  async fence(): Promise<void> {
    await this.pooled.channel.prefetch(this.pooled.prefetch);
  }

  /** The consumer is now on the channel: tell it if the channel dies. */
  join(member: PoolMember, consumerTag: string, acknowledging: boolean): void {
    if (this.released) return;
    this.member = member;
    this.pooled.members.add(member);
    if (acknowledging) this.pooled.ackModeTags.add(consumerTag);
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    if (this.member) this.pooled.members.delete(this.member);
    this.member = null;
    this.onRelease(this.pooled);
  }
}

export class ChannelSet {
  private readonly idleOperations: Channel[] = [];
  private operationsOpen = 0;
  /** Operations waiting for a channel while `maxOperationChannels` are busy. */
  private readonly waiting: Array<(channel: Channel | null) => void> = [];
  private readonly pool = new Set<PooledChannel>();
  private opening: Promise<PooledChannel> | null = null;
  private publisherChannel: Promise<ConfirmChannel> | null = null;
  private readonly dead = new WeakSet<Channel>();
  /** The broker's reason for each channel it closed: amqplib fails what was pending with a bare "channel closed". */
  private readonly closeReasons = new WeakMap<Channel, Error>();
  private disposed = false;
  private readonly trailingFrames: TrailingFrameGuard;

  constructor(
    private readonly connection: ChannelModel,
    private readonly options: ChannelSetOptions,
    private readonly log: Logger,
  ) {
    this.trailingFrames = guardTrailingFrames(connection, log);
  }

  /** Opens the publisher and the warm operation channels. */
  async warmUp(): Promise<void> {
    await this.publisher();
    const warm = await Promise.all(Array.from({ length: this.options.warmOperationChannels }, () => this.openOperationChannel()));
    this.idleOperations.push(...warm);
  }

  /** Channels this set holds open (for metrics and leak checks). */
  get channelCount(): number {
    return (this.publisherChannel ? 1 : 0) + this.operationsOpen + this.pool.size;
  }

  /**
   * Whether another dedicated channel fits under the connection's
   * channel_max (negotiated; RabbitMQ's default is 2047) while leaving room
   * for every operation channel and a few shared ones: past it, opening one
   * would fail the subscribe, and every client would retry it in vain.
   */
  get roomForDedicated(): boolean {
    const channelMax = (this.connection.connection as unknown as { channelMax?: number }).channelMax || 2047;
    return this.channelCount + this.options.maxOperationChannels + SHARED_CHANNEL_HEADROOM < channelMax;
  }

  publisher(): Promise<ConfirmChannel> {
    this.publisherChannel ??= this.open(true, { onClose: () => (this.publisherChannel = null) }) as Promise<ConfirmChannel>;
    return this.publisherChannel;
  }

  /** Runs one broker operation on a channel of its own; a failure closes only that channel. */
  async withOperationChannel<T>(operation: (channel: Channel) => Promise<T>): Promise<T> {
    const channel = await this.leaseOperationChannel();
    try {
      return await operation(channel);
    } finally {
      this.returnOperationChannel(channel);
    }
  }

  private async leaseOperationChannel(): Promise<Channel> {
    const idle = this.idleOperations.pop();
    if (idle) return idle;
    if (this.operationsOpen < this.options.maxOperationChannels) return this.openOperationChannel();
    const handed = await new Promise<Channel | null>((resolve) => this.waiting.push(resolve));
    if (!handed) throw new Error('the broker connection closed while waiting for a channel');
    return handed;
  }

  private returnOperationChannel(channel: Channel): void {
    const alive = !this.dead.has(channel) && !this.disposed;
    const next = this.waiting.shift();
    if (next) {
      // Hand over directly, or open a replacement for the one the broker closed.
      if (alive) next(channel);
      else this.openOperationChannel().then(next, () => next(null));
      return;
    }
    const warm = !this.disposed && this.idleOperations.length < this.options.warmOperationChannels;
    if (!alive) {
      // The operation failed and the broker closed its channel: keep the warm set full.
      if (warm) void this.openOperationChannel().then((fresh) => this.idleOperations.push(fresh), () => undefined);
    } else if (warm) {
      this.idleOperations.push(channel);
    } else {
      void channel.close().catch(() => undefined);
    }
  }

  /** A slot for one consumer on a usable pooled channel; release it when the consumer is gone. */
  async reserveConsumerSlot(): Promise<ConsumerSlot> {
    for (const pooled of this.pool) {
      if (pooled.usable && !pooled.dedicated && pooled.leased < this.options.consumersPerChannel) {
        pooled.leased++;
        return new ConsumerSlot(pooled, (p) => this.onSlotReleased(p));
      }
    }
    if (this.disposed) throw new Error('the broker connection closed');
    // One channel opens at a time, so a burst of subscribes fills it instead of opening many.
    this.opening ??= this.openPooledChannel().finally(() => (this.opening = null));
    await this.opening;
    return this.reserveConsumerSlot();
  }

  /**
   * A channel of its own, closed when the slot is released. A resumable
   * consumer needs one: closing a channel removes its consumer and returns
   * its unacknowledged deliveries to the queue in one step of the queue, so a
   * resume that sees no consumer also sees every delivery back in place. A
   * cancel on a shared channel would leave them with the channel, to be
   * returned later — behind deliveries the resume has already taken.
   */
  async reserveDedicatedSlot(): Promise<ConsumerSlot> {
    if (this.disposed) throw new Error('the broker connection closed');
    const pooled = await this.openPooledChannel(true);
    pooled.leased++;
    return new ConsumerSlot(pooled, (p) => this.onSlotReleased(p));
  }

  /** The pooled channels, oldest first (for tests that need to break one). */
  consumerChannels(): PooledChannel[] {
    return [...this.pool];
  }

  /** A pooled channel with no consumer left is closed. */
  private onSlotReleased(pooled: PooledChannel): void {
    pooled.leased--;
    this.retireIfEmpty(pooled);
  }

  private retireIfEmpty(pooled: PooledChannel): void {
    if (pooled.leased > 0 || !pooled.usable) return;
    pooled.state = 'retired';
    this.pool.delete(pooled);
    void pooled.channel.close().catch(() => undefined);
  }

  /** Why the broker closed this channel (reply code and text), if it did. */
  closeReason(channel: Channel): Error | undefined {
    return this.closeReasons.get(channel);
  }

  /** The connection is gone: nothing here is usable any more. */
  dispose(): void {
    this.disposed = true;
    for (const pooled of this.pool) pooled.state = 'failed';
    this.pool.clear();
    this.idleOperations.length = 0;
    for (const waiter of this.waiting.splice(0)) waiter(null);
  }

  private async openOperationChannel(): Promise<Channel> {
    this.operationsOpen++;
    let channel: Channel;
    try {
      channel = await this.open(false, {
        // Never lease it again, even before amqplib gets round to closing it.
        onError: () => this.dead.add(channel),
        onClose: () => {
          this.operationsOpen--;
          this.dead.add(channel);
          const idle = this.idleOperations.indexOf(channel);
          if (idle >= 0) this.idleOperations.splice(idle, 1);
        },
      });
    } catch (err) {
      this.operationsOpen--;
      throw err;
    }
    return channel;
  }

  private async openPooledChannel(dedicated = false): Promise<PooledChannel> {
    let pooled: PooledChannel | null = null;
    const channel = await this.open(false, {
      // Unusable from the first error: a consume placed on it now would fail with "Channel closing".
      onError: () => {
        if (pooled?.state === 'open') pooled.state = 'failed';
        // Only consumer channels have deliveries still on their way after the broker closes them.
        this.trailingFrames.brokerClosed(channel);
      },
      onClose: () => {
        if (!pooled) return;
        this.pool.delete(pooled);
        if (pooled.state === 'retired') return; // closed by us, empty
        pooled.state = 'failed';
        // When the connection dies every channel closes first; the reconnect moves
        // consumers then. Decide once the connection's own close has been processed.
        setImmediate(() => {
          if (this.disposed) return;
          this.log.warn(
            { consumers: pooled!.members.size, reason: this.closeReasons.get(channel)?.message },
            'the broker closed a consumer channel; moving its consumers to another and telling their clients to resync (messages in flight on it are lost)',
          );
          for (const member of [...pooled!.members]) member.onChannelLost();
        });
      },
    });
    pooled = new PooledChannel(channel, this.options.prefetch, dedicated);
    tolerateStrayDeliveries(channel, (consumerTag, message) => {
      // Requeue a stray for an acknowledging consumer: unacknowledged it would sit here until the channel closes.
      if (message && pooled!.ackModeTags.has(consumerTag) && pooled!.usable) channel.nack(message, false, true);
      this.log.debug({ consumerTag, cancel: message === null }, 'dropped a delivery for a consumer that has already been cancelled');
    });
    await channel.prefetch(this.options.prefetch);
    this.pool.add(pooled);
    // The consumes that waited for it lease it in the next microtasks — unless
    // releases meanwhile made room on an older channel for all of them. Then
    // nobody ever releases a slot of this one, and it would stay open empty.
    if (!dedicated) setImmediate(() => this.retireIfEmpty(pooled));
    return pooled;
  }

  private async open(confirm: boolean, on: { onError?: () => void; onClose: () => void }): Promise<Channel> {
    const channel = confirm ? await this.connection.createConfirmChannel() : await this.connection.createChannel();
    // Only a channel the broker closes (or amqplib for a protocol error) emits
    // `error`; a connection loss closes channels without one. An operator
    // needs the reply code and text to see what was refused.
    channel.on('error', (err: Error) => {
      this.closeReasons.set(channel, err);
      on.onError?.();
      this.log.warn({ code: (err as { code?: unknown }).code, err: err.message }, 'the broker closed a channel');
    });
    channel.on('close', on.onClose);
    return channel;
  }
}

/**
 * amqplib closes a whole channel (541 INTERNAL_ERROR, "Unknown consumer")
 * when a delivery or a broker-sent cancel arrives for a consumer tag it has
 * already forgotten. RabbitMQ can send one legitimately: if a queue dies while
 * the broker handles our basic.cancel, the broker answers cancel-ok itself,
 * ahead of deliveries the queue had already sent. On a shared channel that
 * would end every other consumer on it for the sake of one that was leaving,
 * so such strays are handed to `onStray` instead.
 *
 * This reaches into amqplib's BaseChannel (`consumers`, `dispatchMessage`,
 * stable since 0.5); if a future amqplib lacks them, nothing is patched and
 * the channel-loss handling above still resyncs the consumers.
 */
export function tolerateStrayDeliveries(channel: Channel, onStray: (consumerTag: string, message: ConsumeMessage | null) => void): boolean {
  const internals = channel as unknown as {
    consumers?: unknown;
    dispatchMessage?: (fields: { consumerTag: string }, message: ConsumeMessage | null) => unknown;
  };
  const dispatch = internals.dispatchMessage;
  const consumers = internals.consumers;
  if (typeof dispatch !== 'function' || !(consumers instanceof Map)) return false;
  internals.dispatchMessage = function (this: unknown, fields, message) {
    if (!consumers.has(fields.consumerTag)) return onStray(fields.consumerTag, message);
    return dispatch.call(this, fields, message);
  };
  return true;
}
