/**
 * Idle: many connections with one subscription each and no traffic. Gateway
 * RSS per connection (after a full GC in the gateway, before and after),
 * broker memory per subscription (erlang:memory(total) through the
 * management API: the mean of what connecting added and what disconnecting
 * released, flagged when they disagree), and the same broker figure for Web-STOMP
 * clients and for raw AMQP queues on shared connections.
 */
import { sleep } from '../clock.js';
import { RAISE_BROKER_FDS, type Bench } from '../harness.js';
import type { ClientKind } from '../messages.js';
import { rssBytes, waitForQuiet } from '../proc.js';
import type { GatewayProcess } from '../processes.js';

export const IDLE_PATTERN = 'bench.idle.#';
const KiB = 1024;

/** The median of 3 reads of erlang:memory(total), and the breakdown of that read. */
async function brokerMemory(bench: Bench): Promise<{ total: number; breakdown: Record<string, number> }> {
  const reads: Array<{ erlang: number; breakdown: Record<string, number> }> = [];
  for (let i = 0; i < 3; i++) {
    reads.push(await bench.broker.memory());
    await sleep(300);
  }
  const median = reads.sort((a, b) => a.erlang - b.erlang)[1]!;
  return { total: median.erlang, breakdown: median.breakdown };
}

/** Categories of the broker's memory breakdown that grew by more than 1 KiB per subscription. */
function grownCategories(before: Record<string, number>, after: Record<string, number>, subscriptions: number): Record<string, number> {
  const out: Record<string, number> = {};
  if (!subscriptions) return out;
  for (const [k, v] of Object.entries(after)) {
    if (k === 'total' || k === 'allocated_unused' || k === 'reserved_unallocated') continue;
    const perSub = (v - (before[k] ?? 0)) / subscriptions / KiB;
    if (Math.abs(perSub) >= 1) out[k] = Math.round(perSub * 10) / 10;
  }
  return out;
}

async function gatewayMemory(gateway: GatewayProcess) {
  await gateway.gc();
  await sleep(500);
  const usage = await gateway.memory();
  return { rss: rssBytes(gateway.pid), heap: usage.heapUsed, external: usage.external + usage.arrayBuffers };
}

/** Waits (≤ 60 s) until the broker has dropped this kind's queues or connections, then a little more. */
async function untilGone(bench: Bench, kind: ClientKind, gateway: GatewayProcess | null): Promise<void> {
  const deadline = Date.now() + 60_000;
  const left = async () =>
    kind === 'stomp'
      ? await bench.broker.stompConnectionCount()
      : (await bench.broker.queueNames(kind === 'gateway' ? `topicgate.${gateway!.options.gatewayId}.` : `${bench.prefix}.raw.`)).length;
  while ((await left()) > 0 && Date.now() < deadline) await sleep(500);
  await sleep(2000);
}

/** One idle measurement of `kind` × `wanted` (a fresh gateway of its own for `gateway`); the cluster scenario's single-node arm too. */
export async function idleOnce(bench: Bench, kind: ClientKind, wanted: number) {
  let clients = wanted;
  if (kind === 'stomp') {
    const { free, total } = await bench.brokerRoomForStomp();
    if (free < wanted) {
      bench.warn(`the broker has only ${free} of its ${total} file descriptors free: measuring ${free} Web-STOMP clients instead of ${wanted}. ${RAISE_BROKER_FDS}`);
      clients = free;
      if (clients === 0) throw new Error('no free broker file descriptors');
    }
  }
  const gateway = kind === 'gateway' ? await bench.startGateway() : null;
  try {
    const workerCount = Math.min(bench.options.workers, clients);
    return await bench.withWorkers(workerCount, async (workers) => {
      await waitForQuiet(bench.options.quietBusyPct, bench.options.quietMaxMs);
      const gw0 = gateway ? await gatewayMemory(gateway) : null;
      const broker0 = await brokerMemory(bench);
      const conn = await bench.connect(workers, kind, Array.from({ length: clients }, () => ({ patterns: [IDLE_PATTERN] })), gateway ? [gateway] : [], 50);
      if (conn.failures.length) bench.warn(`idle ${kind} × ${clients}: ${conn.failures.join('; ')}`);
      await sleep(3000);
      const gw1 = gateway ? await gatewayMemory(gateway) : null;
      const broker1 = await brokerMemory(bench);
      // Memory released when the clients go away: a second estimate of the same thing,
      // so a change caused by someone else's traffic on the shared broker shows as disagreement.
      await Promise.all(workers.map((w) => w.request({ op: 'close' })));
      await untilGone(bench, kind, gateway);
      const broker2 = await brokerMemory(bench);
      const perSub = (delta: number) => (conn.subscribed ? Math.round((delta / conn.subscribed / KiB) * 10) / 10 : null);
      const added = perSub(broker1.total - broker0.total);
      const released = perSub(broker1.total - broker2.total);
      const noisy = added !== null && released !== null && Math.abs(added - released) > 0.3 * Math.max(Math.abs(added), Math.abs(released));
      if (noisy) bench.warn(`idle ${kind} × ${clients}: broker memory per subscription measured ${added} KiB on connect but ${released} KiB on disconnect; other traffic on the broker changed its memory meanwhile`);
      const perConn = (a: number, b: number) => (conn.connected ? Math.round(((b - a) / conn.connected / KiB) * 10) / 10 : null);
      return {
        kind,
        n: wanted,
        clients: conn.connected,
        subscriptions: conn.subscribed,
        connectMs: conn.ms,
        ...(conn.failures.length && { failures: conn.failures }),
        ...(gw0 &&
          gw1 && {
            gatewayRssPerConnKiB: perConn(gw0.rss, gw1.rss),
            gatewayHeapPerConnKiB: perConn(gw0.heap, gw1.heap),
            gatewayExternalPerConnKiB: perConn(gw0.external, gw1.external),
            gatewayRssMiB: Math.round(gw1.rss / KiB / KiB),
          }),
        brokerPerSubscriptionKiB: added !== null && released !== null ? Math.round(((added + released) / 2) * 10) / 10 : null,
        brokerAddedKiB: added,
        brokerReleasedKiB: released,
        brokerNoisy: noisy,
        brokerDeltaMiB: Math.round(((broker1.total - broker0.total) / KiB / KiB) * 10) / 10,
        brokerKiBPerSubscriptionByCategory: grownCategories(broker0.breakdown, broker1.breakdown, conn.subscribed),
      };
    });
  } finally {
    await gateway?.stop();
  }
}

export async function idle(bench: Bench): Promise<void> {
  for (const n of bench.options.idleClients) {
    // Resumable subscriptions and Web-MQTT are measured in fan-out and churn only.
    for (const kind of bench.options.kinds.filter((k) => k === 'gateway' || k === 'amqp' || k === 'stomp')) {
      bench.log(`idle ${kind} × ${n}`);
      try {
        bench.record({ scenario: 'idle', ...(await bench.attempt(`idle ${kind} × ${n}`, () => idleOnce(bench, kind, n))) });
      } catch (err) {
        bench.record({ scenario: 'idle', kind, n, error: (err as Error).message });
      }
      await sleep(2000); // let the broker reclaim the last run's processes before the next baseline
    }
  }
}
