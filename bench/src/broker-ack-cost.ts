/**
 * What RabbitMQ itself spends per delivery when fan-out consumers acknowledge,
 * with no gateway and no socket.io in the way: the floor under issue 12's
 * cost target (bench/README.md, "Resumable subscriptions").
 *
 *   node bench/dist/broker-ack-cost.js [consumers=100] [rounds=2]
 *
 * Four layouts of `consumers` exclusive queues bound to one topic exchange,
 * all on one connection, run in turn `rounds` times:
 *
 * - `noack-pooled`: auto-ack, 100 consumers per channel — the gateway's default path;
 * - `ack-pooled`: manual ack, 100 per channel, prefetch 500, one cumulative
 *   `basic.ack` per channel every 32 deliveries per consumer on it — what a
 *   resumable path sharing channels could at best do;
 * - `ack-dedicated`: manual ack, a channel each, prefetch 500, a cumulative
 *   ack every 32 — today's resumable consumer without its marker and fence;
 * - `noack-dedicated`: auto-ack, a channel each — the bench's raw amqplib kind.
 *
 * A publisher on its own connection keeps at most a window of messages
 * ahead of the consumers (closed loop, like the bench's flat mode). Reported
 * per layout: deliveries/s and the broker's CPU µs per delivery (its
 * process's utime + stime from /proc over the window). Compare layouts within
 * one run; this process is one core's worth of client, so deliveries/s is
 * bounded by it too.
 */
import amqp, { type Channel, type ConsumeMessage } from 'amqplib';
import { cpuSeconds, findBrokerPid } from './proc.js';

const LAYOUTS = ['noack-pooled', 'ack-pooled', 'ack-dedicated', 'noack-dedicated'] as const;
type Layout = (typeof LAYOUTS)[number];

const AMQP_URL = process.env.BENCH_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const PER_POOLED_CHANNEL = 100;
const PREFETCH = 500;
/** Deliveries per consumer between cumulative acks: the SDK's receipt batch. */
const ACK_EVERY = 32;
const WARMUP_MS = 1_500;
const MEASURE_MS = 4_000;
const BODY = Buffer.from(JSON.stringify({ s: 1, n: 1, t: 0, pad: 'x'.repeat(150) }));

async function measureLayout(layout: Layout, consumers: number, brokerPid: number) {
  const acking = layout.startsWith('ack');
  const perChannel = layout.endsWith('pooled') ? PER_POOLED_CHANNEL : 1;
  const connection = await amqp.connect(AMQP_URL, { clientProperties: { connection_name: `broker-ack-cost consumers ${layout}` } });
  const publishing = await amqp.connect(AMQP_URL, { clientProperties: { connection_name: `broker-ack-cost publisher ${layout}` } });
  try {
    const publisher = await publishing.createChannel();
    const exchange = `topicgate-bench.ack-cost.${process.pid}.${layout}`;
    await publisher.assertExchange(exchange, 'topic', { durable: false, autoDelete: true });
    let received = 0;
    const queues: string[] = [];
    for (let first = 0; first < consumers; first += perChannel) {
      const channel = await connection.createChannel();
      if (acking) await channel.prefetch(PREFETCH);
      const onChannel = Math.min(perChannel, consumers - first);
      let sinceAck = 0;
      const onDelivery = (msg: ConsumeMessage | null) => {
        received++;
        if (!acking || !msg) return;
        // Every consumer here settles at once, so a cumulative ack covers only settled deliveries.
        if (++sinceAck >= ACK_EVERY * onChannel) {
          channel.ack(msg, true);
          sinceAck = 0;
        }
      };
      for (let i = 0; i < onChannel; i++) queues.push(await consume(channel, exchange, onDelivery, acking));
    }

    const window = Math.max(20, Math.floor(20_000 / consumers));
    let published = 0;
    const run = async (ms: number) => {
      const started = Date.now();
      const broker0 = cpuSeconds(brokerPid);
      const received0 = received;
      while (Date.now() - started < ms) {
        while ((published - window) * consumers < received) {
          publisher.publish(exchange, 'ack-cost.tick', BODY);
          published++;
        }
        await new Promise((resolve) => setImmediate(resolve));
      }
      const deliveries = received - received0;
      return {
        deliveriesPerSec: Math.round(deliveries / ((Date.now() - started) / 1000)),
        brokerUsPerDelivery: Number((((cpuSeconds(brokerPid) - broker0) * 1e6) / deliveries).toFixed(1)),
      };
    };
    await run(WARMUP_MS);
    const result = await run(MEASURE_MS);
    // Deleted before the next layout starts, not left for the broker to reap after the connection closes.
    const cleanup = await connection.createChannel();
    for (const queue of queues) await cleanup.deleteQueue(queue);
    await publisher.deleteExchange(exchange);
    return result;
  } finally {
    await connection.close().catch(() => undefined);
    await publishing.close().catch(() => undefined);
  }
}

async function consume(channel: Channel, exchange: string, onDelivery: (msg: ConsumeMessage | null) => void, acking: boolean): Promise<string> {
  const { queue } = await channel.assertQueue('', { exclusive: true, durable: false });
  await channel.bindQueue(queue, exchange, 'ack-cost.#');
  await channel.consume(queue, onDelivery, { noAck: !acking });
  return queue;
}

async function main(): Promise<void> {
  const consumers = Number(process.argv[2] ?? 100);
  const rounds = Number(process.argv[3] ?? 2);
  if (!(consumers >= 1) || !(rounds >= 1)) throw new Error('usage: node bench/dist/broker-ack-cost.js [consumers >= 1] [rounds >= 1]');
  const brokerPid = findBrokerPid();
  if (!brokerPid) throw new Error('no RabbitMQ process (beam.smp) found on this machine: its CPU is what this measures');
  for (let round = 1; round <= rounds; round++) {
    for (const layout of LAYOUTS) {
      console.log(JSON.stringify({ consumers, round, layout, ...(await measureLayout(layout, consumers, brokerPid)) }));
    }
  }
}

main().catch((err: unknown) => {
  console.error(`broker-ack-cost: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
