/**
 * Frames RabbitMQ sends on a channel after it has closed that channel.
 *
 * When the broker closes a channel (an error on it), deliveries its queues had
 * already handed to the channel's writer still go out after `channel.close`
 * (rabbitmq/rabbitmq-server#13384). amqplib answers `close-ok` and frees the
 * channel number at once, so a trailing frame either names a number amqplib
 * no longer knows — and amqplib closes the whole connection ("Frame on unknown
 * channel"), taking every subscription with it — or lands on the next channel
 * opened under that number and confuses it. The RabbitMQ Java client drops
 * such frames; so do we:
 *
 * - a number the broker closed stays reserved for `quarantineMs`, with a sink
 *   that drops what still arrives on it, so no new channel gets it meanwhile;
 * - a frame for a number nobody holds is dropped and logged, not fatal.
 *
 * This reaches into amqplib's Connection (`accept`, `channels`,
 * `freeChannels`, `releaseChannel`, unchanged since 0.5). If a future amqplib
 * lacks them, nothing is patched and amqplib's own behaviour stands.
 */
import type { Channel, ChannelModel } from 'amqplib';
import type { Logger } from 'pino';

interface Frame {
  channel: number;
}

interface ChannelRecord {
  channel: { accept(frame: Frame): void; toClosed(stack?: unknown): void };
  buffer: unknown;
}

interface ConnectionInternals {
  accept: (frame: Frame) => void;
  channels: Array<ChannelRecord | null>;
  freeChannels: { set(i: number): void; clear(i: number): void };
  releaseChannel: (ch: number) => void;
}

/** Channel numbers kept out of use at once (of RabbitMQ's 2,047). */
const MAX_HELD = 64;

export interface TrailingFrameGuard {
  /** The broker closed this channel: keep its number out of use for a while. */
  brokerClosed(channel: Channel): void;
}

export function guardTrailingFrames(model: ChannelModel, log: Logger, quarantineMs = 30_000): TrailingFrameGuard {
  const connection = (model as unknown as { connection?: Partial<ConnectionInternals> }).connection;
  const usable =
    connection !== undefined &&
    typeof connection.accept === 'function' &&
    typeof connection.releaseChannel === 'function' &&
    Array.isArray(connection.channels) &&
    typeof connection.freeChannels?.set === 'function';
  if (!usable) {
    log.warn('this amqplib version is not the one topicgate patches for frames after a broker channel close; a consumer channel error may close the connection');
    return { brokerClosed: () => undefined };
  }
  const internals = connection as ConnectionInternals;
  const closedByBroker = new Set<number>();

  const accept = internals.accept;
  internals.accept = function (this: unknown, frame: Frame) {
    if (frame.channel !== 0 && !internals.channels[frame.channel]) {
      log.debug({ channel: frame.channel }, 'dropped a frame for a channel that is already closed');
      return;
    }
    return accept.call(this, frame);
  };

  /** Numbers held now, oldest first; bounded, so a storm of channel errors cannot use up channel_max. */
  const held: number[] = [];
  const free = (ch: number, sink: ChannelRecord) => {
    if (internals.channels[ch] !== sink) return;
    internals.channels[ch] = null;
    internals.freeChannels.clear(ch);
  };

  const release = internals.releaseChannel;
  internals.releaseChannel = function (this: unknown, ch: number) {
    release.call(this, ch);
    if (!closedByBroker.delete(ch)) return;
    const sink: ChannelRecord = { channel: { accept: () => undefined, toClosed: () => undefined }, buffer: null };
    internals.freeChannels.set(ch);
    internals.channels[ch] = sink;
    held.push(ch);
    while (held.length > MAX_HELD) {
      const oldest = held.shift()!;
      free(oldest, internals.channels[oldest] as ChannelRecord);
    }
    setTimeout(() => {
      const at = held.indexOf(ch);
      if (at >= 0) held.splice(at, 1);
      free(ch, sink);
    }, quarantineMs).unref();
  };

  return {
    brokerClosed(channel) {
      const ch = (channel as unknown as { ch?: unknown }).ch;
      if (typeof ch === 'number') closedByBroker.add(ch);
    },
  };
}
