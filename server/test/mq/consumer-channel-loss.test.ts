/**
 * No silent loss when consumers share a channel (issue 16).
 *
 * Consumers share pooled channels and do not acknowledge, so a pooled channel
 * that dies takes every message in flight on it with it. Two things follow,
 * both checked here on the real RabbitMQ:
 * - ending a consumer must never kill its shared channel: the cancel is
 *   acknowledged before the queue is deleted, else the broker's own cancel
 *   for the deleted queue reaches amqplib after it forgot the consumer and
 *   amqplib closes the channel ("Unknown consumer", 541);
 * - if a pooled channel dies anyway, every consumer that was on it is told to
 *   resync, and no other consumer is.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import type { AmqpConnector } from '../../src/mq/amqp.js';
import type { Consumer, ConsumerResyncReason, MqMessage } from '../../src/mq/connector.js';
import { deleteExchange, eventually, listQueues, requireBroker } from '../support/broker.js';
import { connectorFixture } from '../support/connectors.js';
import { recordingLog, type LogRecord } from '../support/recording-log.js';

const { exchanges, connectors, connector } = connectorFixture('topicgate-channel-loss');

/**
 * One consumer's view of a stream of numbered messages on one key: every
 * number once, in order, or a resync that excuses what came before it.
 */
class StreamCheck {
  next: number | null = null;
  readonly resyncs: ConsumerResyncReason[] = [];
  /** Messages skipped with no resync since. */
  readonly silentLosses: Array<{ expected: number; got: number }> = [];
  duplicatesOrReorders = 0;
  received = 0;

  onMessage(message: MqMessage): void {
    const n = message.body.n as number;
    this.received++;
    if (this.next !== null && n > this.next) this.silentLosses.push({ expected: this.next, got: n });
    if (this.next !== null && n < this.next) this.duplicatesOrReorders++;
    this.next = n + 1;
  }

  onResync(reason: ConsumerResyncReason): void {
    this.resyncs.push(reason);
    this.next = null; // whatever was lost before is excused; checking restarts at the next message
  }
}

/** Publishes `{ n }` to `key` as fast as confirms allow, until stopped. */
function publishLoop(mq: AmqpConnector, key: string): { stop: () => Promise<number> } {
  let running = true;
  let n = 0;
  const done = (async () => {
    while (running) {
      const batch = Array.from({ length: 50 }, () => mq.produce(key, { n: n++ }));
      await Promise.all(batch);
    }
  })();
  return {
    stop: async () => {
      running = false;
      await done;
      return n;
    },
  };
}

const channelClosures = (records: LogRecord[]) => records.filter((r) => r.msg === 'the broker closed a channel');

beforeAll(requireBroker);
afterEach(async () => {
  for (const mq of connectors.splice(0)) await mq.close();
});
afterAll(async () => {
  for (const exchange of exchanges.splice(0)) await deleteExchange(exchange);
});

describe('consumers sharing a channel', () => {
  it('ending consumers under load never closes their shared channel, and the consumers beside them miss nothing', async () => {
    const { log, records } = recordingLog();
    const mq = await connector({ log, consumersPerChannel: 100 });
    // Nearly a full pooled channel of busy consumers: the broker's channel process lags behind its
    // deliveries, which is when a cancel racing a queue delete let deliveries overtake cancel-ok.
    const stable = Array.from({ length: 95 }, () => new StreamCheck());
    for (const check of stable) {
      await mq.startConsuming('load.#', (m) => check.onMessage(m), { onResync: (reason) => check.onResync(reason) });
    }
    const publisher = publishLoop(mq, 'load.k');
    const refusals: string[] = [];
    let cycles = 0;
    let published: number;
    try {
      // Consumers that start on the same pooled channels, receive, and end while deliveries are in flight to them.
      const deadline = Date.now() + 10_000;
      await Promise.all(
        Array.from({ length: 20 }, async () => {
          while (Date.now() < deadline) {
            try {
              let arrived: () => void = () => undefined;
              const first = new Promise<void>((resolve) => (arrived = resolve));
              const consumer: Consumer = await mq.startConsuming('load.#', () => arrived());
              await first;
              await consumer.stopConsuming();
              cycles++;
            } catch (err) {
              refusals.push((err as Error).message);
            }
          }
        }),
      );
    } finally {
      published = await publisher.stop();
    }
    await eventually(async () => stable.every((c) => c.next === published), 'every stable consumer received the last message');

    for (const check of stable) {
      expect(check.silentLosses).toEqual([]);
      expect(check.duplicatesOrReorders).toBe(0);
      expect(check.resyncs).toEqual([]);
    }
    expect(channelClosures(records), 'a consumer channel was closed by an ending consumer').toEqual([]);
    expect(refusals).toEqual([]);
    expect(cycles).toBeGreaterThan(100);
    expect((await listQueues(mq.options.queuePrefix)).length).toBe(stable.length);
  }, 60_000);

  it('a pooled channel killed by a broker error resyncs exactly the consumers that were on it', async () => {
    const { log, records } = recordingLog();
    const mq = await connector({ log, consumersPerChannel: 10 });
    const checks = new Map<string, StreamCheck>();
    for (let i = 0; i < 30; i++) {
      const check = new StreamCheck();
      const consumer = await mq.startConsuming('kill.#', (m) => check.onMessage(m), { onResync: (reason) => check.onResync(reason) });
      checks.set(consumer.queue, check);
    }
    const pools = mq.channels!.consumerChannels();
    expect(pools.length).toBe(3);
    const victim = pools[1]!;
    const victimQueues = new Set([...victim.members].map((member) => member.queue));
    expect(victimQueues.size).toBe(10);

    const publisher = publishLoop(mq, 'kill.k');
    onTestFinished(() => void publisher.stop().catch(() => undefined));
    await eventually(async () => [...checks.values()].every((c) => c.received > 100), 'traffic flows to every consumer');
    // A broker error on that channel alone: acknowledging a delivery tag it never sent is
    // PRECONDITION_FAILED, and the broker closes the channel.
    victim.channel.ack({ fields: { deliveryTag: 1_000_000_000 + Number.parseInt(randomBytes(2).toString('hex'), 16) } } as never);
    await eventually(async () => [...checks.entries()].every(([queue, c]) => !victimQueues.has(queue) || c.resyncs.length === 1), 'every consumer of the killed channel resynced');
    // ...and keeps flowing afterwards.
    const receivedAtResync = new Map([...checks].map(([queue, c]) => [queue, c.received]));
    await eventually(async () => [...checks].every(([queue, c]) => c.received > receivedAtResync.get(queue)! + 100), 'every consumer flows again');
    const published = await publisher.stop();
    await eventually(async () => [...checks.values()].every((c) => c.next === published), 'every consumer received the last message');

    expect(channelClosures(records)).toHaveLength(1);
    // The connection outlived the channel: amqplib would close it for the frames the broker sends after closing a channel.
    expect(records.filter((r) => r.msg.startsWith('lost the broker connection'))).toEqual([]);
    for (const [queue, check] of checks) {
      expect(check.silentLosses, queue).toEqual([]);
      expect(check.duplicatesOrReorders, queue).toBe(0);
      expect(check.resyncs, queue).toEqual(victimQueues.has(queue) ? ['interrupted'] : []);
    }
    expect((await listQueues(mq.options.queuePrefix)).length).toBe(30);
  }, 60_000);

  it('a delivery for a consumer amqplib has already forgotten is dropped, not fatal to the channel', async () => {
    const { log, records } = recordingLog();
    const mq = await connector({ log });
    const forgotten = new StreamCheck();
    const neighbour = new StreamCheck();
    const doomed = await mq.startConsuming('stray.#', (m) => forgotten.onMessage(m));
    await mq.startConsuming('stray.#', (m) => neighbour.onMessage(m), { onResync: (reason) => neighbour.onResync(reason) });
    const [pooled] = mq.channels!.consumerChannels();
    // What amqplib's state is after a cancel-ok that overtook deliveries: the broker still
    // delivers to the tag, amqplib no longer knows it.
    const internals = pooled!.channel as unknown as { consumers: Map<string, unknown> };
    const tag = [...internals.consumers.keys()][0]!;
    internals.consumers.delete(tag);
    for (let n = 0; n < 100; n++) await mq.produce('stray.k', { n });
    await eventually(async () => neighbour.next === 100, 'the neighbour received every message');

    expect(forgotten.received).toBe(0);
    expect(channelClosures(records)).toEqual([]);
    expect(neighbour.silentLosses).toEqual([]);
    expect(neighbour.resyncs).toEqual([]);
    expect(pooled!.usable).toBe(true);
    await doomed.stopConsuming();
  });
});
