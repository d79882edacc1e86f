/**
 * The soak's publisher (a child process): a fixed rate straight to the
 * exchange on one confirm channel, never through the gateway. One channel,
 * so the broker routes messages in the order of their global sequence number
 * g; each body carries g, its key's counter n and its send time t.
 *
 * Every message is tracked until the broker confirms it. If the broker drops
 * the connection (someone else restarting it), what was in flight is reported
 * as unconfirmed — it may or may not have been routed, so receivers are not
 * held to it — and the publisher reconnects and carries on from the next g.
 */
import amqp, { type ChannelModel, type ConfirmChannel } from 'amqplib';
import { nowUs, sleep } from '../clock.js';
import { KeySpace } from './keys.js';
import type { PublisherCommand, PublisherFinal, PublisherPlan, PublisherProgress, Ranges } from './messages.js';
import { sendEvent, serveRpc } from './rpc.js';

const PROGRESS_EVERY_MS = 1000;
const CHECKPOINT_EVERY_MS = 100;

let next = 0;
let confirmed = 0;
let reconnects = 0;
let lateTicks = 0;
const outstanding = new Set<number>();
const nacked: number[] = [];
const unconfirmed: number[] = [];
let checkpoints: Array<[number, number]> = [];
let stopRequested = false;
let connection: ChannelModel | null = null;
let running: Promise<void> | null = null;

function progress(): PublisherProgress {
  const out = { published: next, confirmed, nacked: nacked.length, unconfirmed: unconfirmed.length, reconnects, lateTicks, checkpoints };
  checkpoints = [];
  return out;
}

function toRanges(list: number[]): Ranges {
  const sorted = [...list].sort((a, b) => a - b);
  const ranges: Ranges = [];
  for (const g of sorted) {
    const last = ranges[ranges.length - 1];
    if (last && g === last[1] + 1) last[1] = g;
    else ranges.push([g, g]);
  }
  return ranges;
}

/** The channel was lost: whatever it had not confirmed may or may not have been routed. */
function abandonOutstanding(): void {
  unconfirmed.push(...outstanding);
  outstanding.clear();
}

async function openChannel(plan: PublisherPlan): Promise<ConfirmChannel> {
  for (let attempt = 0; ; attempt++) {
    try {
      connection = await amqp.connect(plan.amqpUrl, { clientProperties: { connection_name: plan.connectionName } });
      connection.on('error', () => undefined);
      const ch = await connection.createConfirmChannel();
      ch.on('error', () => undefined);
      await ch.checkExchange(plan.exchange);
      return ch;
    } catch (err) {
      await connection?.close().catch(() => undefined);
      connection = null;
      if (stopRequested) throw err;
      process.stderr.write(`[soak publisher] ${(err as Error).message}; retrying\n`);
      await sleep(Math.min(5000, 200 * 2 ** attempt));
    }
  }
}

async function publishLoop(plan: PublisherPlan): Promise<void> {
  const space = new KeySpace(plan.streams, plan.events);
  const pad = 'x'.repeat(Math.max(0, plan.bodyBytes - 60));
  const options = { contentType: 'application/json' };
  const perMs = plan.rate / 1000;
  let lastCheckpoint = 0;
  while (!stopRequested) {
    const ch = await openChannel(plan);
    let lost = false;
    ch.once('close', () => {
      lost = true;
      abandonOutstanding();
    });
    // The schedule restarts with each channel: no burst to catch up after an outage.
    const startMs = performance.now();
    const startG = next;
    while (!stopRequested && !lost) {
      const due = startG + Math.floor((performance.now() - startMs) * perMs);
      if (due - next > plan.rate * 0.005 + 1) lateTicks++;
      let full = false;
      while (next < due && !lost) {
        const g = next++;
        const key = space.keys[space.keyIndexOf(g)]!;
        const t = nowUs();
        const body = Buffer.from(`{"g":${g},"n":${space.counterOf(g)},"t":${t},"pad":"${pad}"}`);
        outstanding.add(g);
        const ok = ch.publish(plan.exchange, key, body, options, (err: unknown) => {
          // Callbacks for messages abandoned with a lost channel are ignored.
          if (!outstanding.delete(g)) return;
          if (err) nacked.push(g);
          else confirmed++;
        });
        if (!ok) full = true;
      }
      const now = performance.now();
      if (now - lastCheckpoint >= CHECKPOINT_EVERY_MS) {
        checkpoints.push([next, nowUs()]);
        lastCheckpoint = now;
      }
      if (full) await drainedOrClosed(ch);
      else await sleep(1);
    }
    if (lost) {
      reconnects++;
      await connection?.close().catch(() => undefined);
      connection = null;
      continue;
    }
    // Stopping: wait (bounded) for the broker to confirm everything sent.
    await Promise.race([ch.waitForConfirms().catch(() => undefined), sleep(30_000)]);
    abandonOutstanding();
  }
}

/** Resolves when the channel can take more, or is gone. */
function drainedOrClosed(ch: ConfirmChannel): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      ch.off('drain', done);
      ch.off('close', done);
      resolve();
    };
    ch.on('drain', done);
    ch.on('close', done);
  });
}

async function stop(): Promise<PublisherFinal> {
  stopRequested = true;
  await running?.catch(() => undefined);
  checkpoints.push([next, nowUs()]);
  await connection?.close().catch(() => undefined);
  connection = null;
  return {
    ...progress(),
    lastG: next - 1,
    nackedRanges: toRanges(nacked),
    unconfirmedRanges: toRanges(unconfirmed),
  };
}

let progressTimer: NodeJS.Timeout | null = null;

serveRpc<PublisherCommand>(
  async (cmd) => {
    if (cmd.op === 'start') {
      running = publishLoop(cmd.plan);
      running.catch((err: unknown) => process.stderr.write(`[soak publisher] ${(err as Error).stack ?? String(err)}\n`));
      progressTimer = setInterval(() => sendEvent(progress()), PROGRESS_EVERY_MS);
      return null;
    }
    if (progressTimer) clearInterval(progressTimer);
    return stop();
  },
  async () => {
    stopRequested = true;
    await connection?.close().catch(() => undefined);
  },
);
