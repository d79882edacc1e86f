/**
 * The publisher process (forked by the orchestrator): amqplib straight to the
 * exchange, never through the gateway. `paced` publishes a fixed rate;
 * `flat` publishes as fast as the slowest subscriber keeps up with: the
 * orchestrator grants credit (highest sequence number every subscriber has
 * reached + a window), so broker queues stay short and what is measured is
 * sustained delivery, not queue growth.
 */
import amqp, { type Channel, type ChannelModel } from 'amqplib';
import { nowUs, sleep } from './clock.js';
import type { PublishPlan, PublishResult, PublisherCommand, PublisherEvent } from './messages.js';

let connection: ChannelModel | null = null;
let channel: Channel | null = null;
let credit = 0;
let wake: (() => void) | null = null;
let stopRequested = false;

function send(event: PublisherEvent): void {
  process.send?.(event);
}

const LOG_WORDS = 'compiling linking running tests module step fetching artifacts cache hit miss warning passed'.split(' ');

function filler(plan: PublishPlan): string {
  // {"s":1,"n":123456,"t":1234567890123,"m":1,"pad":""} is ~52 bytes.
  return 'x'.repeat(Math.max(0, plan.bodyBytes - 54));
}

function logLine(n: number): string {
  let line = `[${new Date().toISOString()}] line ${n}:`;
  for (let i = 0; line.length < 140; i++) line += ' ' + LOG_WORDS[(n * 7 + i * 3) % LOG_WORDS.length];
  return line;
}

async function run(plan: PublishPlan): Promise<PublishResult> {
  connection = await amqp.connect(plan.amqpUrl, { clientProperties: { connection_name: `bench publisher ${process.pid}` } });
  connection.on('error', () => undefined);
  let lost: Error | null = null;
  connection.once('close', () => {
    lost ??= new Error('the broker closed the publisher connection');
  });
  const ch = (channel = await connection.createChannel());
  ch.on('error', (err: Error) => (lost ??= new Error(`publisher channel: ${err.message}`)));
  ch.on('close', () => (lost ??= new Error('the publisher channel closed')));
  await ch.checkExchange(plan.exchange);

  const pad = filler(plan);
  const published = plan.keys.map(() => 0);
  const options = { contentType: 'application/json' };
  let measuring: 0 | 1 = 0;
  let lateTicks = 0;
  let total = 0;

  /** Publishes one message on the next stream (round robin); false when the channel's buffer is full. */
  const publishNext = (): boolean => {
    const k = total++ % plan.keys.length;
    const n = ++published[k]!;
    const s = plan.firstStream + k;
    const t = nowUs();
    const json = plan.logLines
      ? `{"s":${s},"n":${n},"t":${t},"m":${measuring},"line":${JSON.stringify(logLine(n))}}`
      : `{"s":${s},"n":${n},"t":${t},"m":${measuring},"pad":"${pad}"}`;
    return ch.publish(plan.exchange, plan.keys[k]!, Buffer.from(json), options);
  };

  // Resolves on drain, or when the channel dies (the loop then stops on `lost`).
  const drained = () =>
    new Promise<void>((resolve) => {
      const done = () => {
        ch.off('drain', done);
        ch.off('close', done);
        resolve();
      };
      ch.once('drain', done);
      ch.once('close', done);
    });
  const started = Date.now();
  const measureFrom = started + plan.warmupMs;
  const end = measureFrom + plan.measureMs;
  let measureFromUs = 0;
  send({ type: 'started' });

  const phase = () => {
    if (lost) throw lost;
    const now = Date.now();
    if (!measuring && now >= measureFrom) {
      measuring = 1;
      measureFromUs = nowUs();
    }
    return now < end && !stopRequested;
  };

  if (plan.mode === 'flat') {
    while (phase()) {
      if (total >= credit) {
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, 50); // re-check the clock even if no credit comes
        });
        wake = null;
        continue;
      }
      let batch = 0;
      let full = false;
      while (total < credit && batch++ < 500) {
        if (!publishNext()) {
          full = true;
          break;
        }
      }
      if (full) await drained();
      else await new Promise<void>((resolve) => setImmediate(resolve));
    }
  } else {
    const perMs = plan.rate / 1000;
    while (phase()) {
      const due = Math.floor((Date.now() - started) * perMs);
      if (due - total > plan.rate * 0.005 + 1) lateTicks++;
      let full = false;
      while (total < due) if (!publishNext()) full = true;
      if (full) await drained();
      await sleep(1);
    }
  }
  const measureToUs = nowUs();
  // A synchronous round trip: everything published before it has reached the broker.
  await ch.checkExchange(plan.exchange);
  const result: PublishResult = {
    published: Object.fromEntries(published.map((n, k) => [String(plan.firstStream + k), n])),
    measureFromUs: measureFromUs || measureToUs,
    measureToUs,
    lateTicks,
  };
  await connection.close().catch(() => undefined);
  connection = null;
  return result;
}

process.on('message', (cmd: PublisherCommand) => {
  if (cmd.op === 'start') {
    run(cmd.plan).then(
      (result) => send({ type: 'done', result }),
      (err: unknown) => send({ type: 'error', error: (err as Error).stack ?? String(err) }),
    );
  } else if (cmd.op === 'credit') {
    credit = Math.max(credit, cmd.upTo);
    wake?.();
  } else if (cmd.op === 'stop') {
    stopRequested = true;
    wake?.();
  }
});

process.on('disconnect', () => {
  void (connection?.close().catch(() => undefined) ?? Promise.resolve()).finally(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
});

send({ type: 'ready' });
