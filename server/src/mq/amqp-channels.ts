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
 *   run consume and cancel; if one is closed anyway, its consumers move to
 *   another channel and lose nothing (their queues keep messages meanwhile).
 * - the publisher is one confirm channel.
 *
 * Every channel has an `error` listener: in amqplib an unhandled channel error
 * takes the whole connection down. A ChannelSet lives and dies with its
 * connection.
 */
import type { Channel, ChannelModel, ConfirmChannel } from 'amqplib';
import type { Logger } from 'pino';

export interface ChannelSetOptions {
  /** Consumers per pooled channel. */
  consumersPerChannel: number;
  /** Idle operation channels kept open. */
  warmOperationChannels: number;
  /** Operation channels open at once; further operations wait. Bounds channel use in bursts (a thousand sockets closing). */
  maxOperationChannels: number;
  /** Unacknowledged deliveries per acknowledging (persistent) consumer. */
  prefetch: number;
}

/** Told when the pooled channel it consumes on was closed by the broker. */
export interface PoolMember {
  onChannelLost(): void;
}

export class PooledChannel {
  alive = true;
  /** Consumers on this channel, plus consumes in flight. */
  reserved = 0;
  readonly members = new Set<PoolMember>();

  constructor(readonly channel: Channel) {}
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

  constructor(
    private readonly connection: ChannelModel,
    private readonly options: ChannelSetOptions,
    private readonly log: Logger,
  ) {}

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

  publisher(): Promise<ConfirmChannel> {
    this.publisherChannel ??= this.open(true, () => (this.publisherChannel = null)) as Promise<ConfirmChannel>;
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

  /** A pooled channel with a slot reserved for one consumer; give it back with `releaseSlot`. */
  async reserveConsumerSlot(): Promise<PooledChannel> {
    for (const pooled of this.pool) {
      if (pooled.alive && pooled.reserved < this.options.consumersPerChannel) {
        pooled.reserved++;
        return pooled;
      }
    }
    // One channel opens at a time, so a burst of subscribes fills it instead of opening many.
    this.opening ??= this.openPooledChannel().finally(() => (this.opening = null));
    await this.opening;
    return this.reserveConsumerSlot();
  }

  /** A consumer left (or never started); a pooled channel with none left is closed. */
  releaseSlot(pooled: PooledChannel): void {
    pooled.reserved--;
    if (pooled.reserved > 0 || !pooled.alive) return;
    pooled.alive = false;
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
    for (const pooled of this.pool) pooled.alive = false;
    this.pool.clear();
    this.idleOperations.length = 0;
    for (const waiter of this.waiting.splice(0)) waiter(null);
  }

  private async openOperationChannel(): Promise<Channel> {
    this.operationsOpen++;
    let channel: Channel;
    try {
      channel = await this.open(false, () => {
        this.operationsOpen--;
        this.dead.add(channel);
        const idle = this.idleOperations.indexOf(channel);
        if (idle >= 0) this.idleOperations.splice(idle, 1);
      });
    } catch (err) {
      this.operationsOpen--;
      throw err;
    }
    return channel;
  }

  private async openPooledChannel(): Promise<PooledChannel> {
    let pooled: PooledChannel | null = null;
    const channel = await this.open(false, () => {
      if (!pooled) return;
      this.pool.delete(pooled);
      if (!pooled.alive) return; // closed by us
      pooled.alive = false;
      // When the connection dies every channel closes first; the reconnect moves
      // consumers then. Decide once the connection's own close has been processed.
      setImmediate(() => {
        if (this.disposed) return;
        this.log.warn({ consumers: pooled!.members.size }, 'the broker closed a consumer channel; moving its consumers to another');
        for (const member of pooled!.members) member.onChannelLost();
      });
    });
    await channel.prefetch(this.options.prefetch);
    pooled = new PooledChannel(channel);
    this.pool.add(pooled);
    return pooled;
  }

  private async open(confirm: boolean, onClose: () => void): Promise<Channel> {
    const channel = confirm ? await this.connection.createConfirmChannel() : await this.connection.createChannel();
    // Only a channel the broker closes (or amqplib for a protocol error) emits
    // `error`; a connection loss closes channels without one. An operator
    // needs the reply code and text to see what was refused.
    channel.on('error', (err: Error) => {
      this.closeReasons.set(channel, err);
      this.log.warn({ code: (err as { code?: unknown }).code, err: err.message }, 'the broker closed a channel');
    });
    channel.on('close', onClose);
    return channel;
  }
}
