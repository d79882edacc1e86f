/**
 * The guard against frames RabbitMQ sends after closing a channel, on a
 * stand-in for amqplib's Connection internals (the real thing is exercised by
 * consumer-channel-loss.test.ts): numbers the broker closed are held, a frame
 * for a number nobody holds is dropped, and a storm of channel errors cannot
 * hold more than a bounded set of numbers.
 */
import { describe, expect, it } from 'vitest';
import type { Channel, ChannelModel } from 'amqplib';
import { guardTrailingFrames } from '../../src/mq/amqp-trailing-frames.js';
import { quietLog } from '../support/broker.js';

function fakeConnection() {
  const used = new Set<number>();
  const accepted: number[] = [];
  const connection = {
    channels: [] as Array<unknown>,
    freeChannels: { set: (i: number) => used.add(i), clear: (i: number) => used.delete(i) },
    // As amqplib's mainAccept: hand the frame to whoever holds its number; none is a connection error.
    accept(frame: { channel: number }) {
      const record = connection.channels[frame.channel] as { channel: { accept(f: unknown): void } } | null | undefined;
      if (!record) throw new Error(`Frame on unknown channel ${frame.channel}`);
      record.channel.accept(frame);
    },
    releaseChannel(ch: number) {
      used.delete(ch);
      connection.channels[ch] = null;
    },
  };
  const open = (ch: number) => {
    used.add(ch);
    connection.channels[ch] = { channel: { accept: () => accepted.push(ch), toClosed: () => undefined }, buffer: null };
    return { ch } as unknown as Channel;
  };
  return { model: { connection } as unknown as ChannelModel, connection, used, accepted, open };
}

describe('trailing frames after a broker channel close', () => {
  it('keeps a broker-closed number out of use and drops frames for numbers nobody holds', () => {
    const { model, connection, used, accepted, open } = fakeConnection();
    const guard = guardTrailingFrames(model, quietLog);
    const channel = open(7);
    guard.brokerClosed(channel);
    connection.releaseChannel(7);
    expect(used.has(7)).toBe(true); // not handed to the next channel opened
    connection.accept({ channel: 7 }); // a delivery that was already on its way: swallowed by the hold
    connection.accept({ channel: 9 }); // a number nobody holds: dropped, not fatal
    expect(accepted).toEqual([]);
  });

  it('holds at most 64 numbers however many channels the broker closes', () => {
    const { model, connection, used, open } = fakeConnection();
    const guard = guardTrailingFrames(model, quietLog);
    for (let ch = 1; ch <= 500; ch++) {
      guard.brokerClosed(open(ch));
      connection.releaseChannel(ch);
    }
    expect(used.size).toBe(64);
  });
});
