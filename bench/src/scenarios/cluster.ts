/**
 * Cluster (issue 13, opt-in): the same fan-out — same client counts, same
 * publisher, same checks on every delivery — through HAProxy to the three
 * gateways of scripts/cluster.sh's rig on a three-node RabbitMQ cluster,
 * beside one gateway on the bench's own broker (what fan-out's `gateway`
 * kind runs), in one run; then broker memory per idle subscription on both.
 *
 * The bench's socket.io clients are websocket-only: one TCP connection per
 * client, which HAProxy balances round robin when it opens, so they need no
 * stickiness (HAProxy's `tg_gw` cookie matters to long-polling only).
 */
import { sleep } from '../clock.js';
import { memoryPerSubscription, medianRead, ClusterRig, RIG_URL, rigAmqpUrl, type ClusterMemory } from '../cluster-rig.js';
import { integrityProblems, type Bench, type GatewayEndpoint } from '../harness.js';
import { waitForQuiet } from '../proc.js';
import { BENCH_GATEWAY_ENV, type GatewayProcess } from '../processes.js';
import { fanoutOnce, type FanoutVia } from './fanout.js';
import { IDLE_PATTERN, idleOnce } from './idle.js';

/** Resolves once HAProxy answers /readyz (a gateway behind it is ready). */
async function haproxyReady(timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await fetch(`${RIG_URL}/readyz`).then((r) => r.ok, () => false);
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`HAProxy (${RIG_URL}) did not answer /readyz within ${timeoutMs / 1000} s`);
    await sleep(200);
  }
}

async function threeReads(rig: ClusterRig): Promise<ClusterMemory> {
  const reads: ClusterMemory[] = [];
  for (let i = 0; i < 3; i++) {
    reads.push(await rig.memory());
    await sleep(300);
  }
  return medianRead(reads);
}

/** Idle subscriptions through HAProxy: the cluster's erlang:memory(total), summed over its nodes, before, with and after them. */
async function clusterMemoryOnce(bench: Bench, rig: ClusterRig, endpoints: readonly GatewayEndpoint[], n: number) {
  const { options } = bench;
  return bench.withWorkers(Math.min(options.workers, n), async (workers) => {
    await waitForQuiet(options.quietBusyPct, options.quietMaxMs);
    const before = await threeReads(rig);
    const conn = await bench.connect(workers, 'gateway', Array.from({ length: n }, () => ({ patterns: [IDLE_PATTERN] })), endpoints, 50);
    if (conn.failures.length) bench.warn(`cluster memory × ${n}: ${conn.failures.join('; ')}`);
    await sleep(3000);
    const during = await threeReads(rig);
    await Promise.all(workers.map((w) => w.request({ op: 'close' })));
    // Until the cluster has dropped the clients' queues (≤ 60 s), then a little more, as idle.ts waits.
    const deadline = Date.now() + 60_000;
    while ((await rig.memory()).queues > before.queues && Date.now() < deadline) await sleep(1000);
    await sleep(2000);
    const after = await threeReads(rig);
    const m = memoryPerSubscription(before, during, after, conn.subscribed);
    if (m.noisy) bench.warn(`cluster memory × ${n}: ${m.addedKiB} KiB per subscription on connect but ${m.releasedKiB} KiB on disconnect`);
    return {
      n,
      clients: conn.connected,
      subscriptions: conn.subscribed,
      connectMs: conn.ms,
      ...(conn.failures.length && { failures: conn.failures }),
      queuesAdded: during.queues - before.queues,
      brokerPerSubscriptionKiB: m.perSubscriptionKiB,
      brokerAddedKiB: m.addedKiB,
      brokerReleasedKiB: m.releasedKiB,
      brokerNoisy: m.noisy,
      brokerPerNodeAddedKiB: m.perNodeAddedKiB,
      brokerDeltaMiB: Math.round(((during.total - before.total) / 1024 / 1024) * 10) / 10,
    };
  });
}

export async function cluster(bench: Bench): Promise<void> {
  const { options } = bench;
  const c = options.cluster;
  const rig = new ClusterRig({
    dir: c.dir,
    // The rig's gateways run on the bench's exchange with the bench's limits (cluster.sh passes TOPICGATE_* on).
    gatewayEnv: { ...BENCH_GATEWAY_ENV, TOPICGATE_EXCHANGE: bench.exchange },
    log: (l) => bench.log(l),
  });
  bench.deferCleanup(() => rig.stop());
  let single: GatewayProcess[] = [];
  try {
    bench.log(`cluster: starting the rig in ${c.dir} (scripts/cluster.sh start, about a minute)`);
    const startMs = await rig.start();
    await haproxyReady();
    const endpoints: GatewayEndpoint[] = rig.gatewayPids().map((pid) => ({ url: RIG_URL, pid, ready: () => haproxyReady() }));
    if (endpoints.length !== 3) throw new Error(`expected 3 rig gateways, found pids ${endpoints.map((e) => e.pid).join(', ') || 'none'} in ${c.dir}`);
    const via: FanoutVia = { amqpUrl: rigAmqpUrl(c.publishNode), brokerPids: () => rig.nodePids(), extraPids: () => ({ haproxy: rig.haproxyPids() }) };
    bench.record({ scenario: 'cluster-rig', startMs, dir: c.dir, publishNode: c.publishNode, gatewayPids: endpoints.map((e) => e.pid), nodePids: rig.nodePids() });
    // One gateway on one node: the bench's usual gateway on its own broker, exactly fan-out's `gateway` kind.
    single = await bench.startGateways(1);

    for (const n of c.clients) {
      for (const mode of ['flat', 'paced'] as const) {
        for (const arm of ['single', 'cluster'] as const) {
          const what = `cluster scenario: fan-out ${mode} × ${n}, ${arm === 'single' ? 'one gateway, one node' : 'HAProxy, 3 gateways, 3 nodes'}`;
          bench.log(what);
          try {
            const r = await bench.attempt(what, () => (arm === 'single' ? fanoutOnce(bench, 'gateway', n, mode, single) : fanoutOnce(bench, 'gateway', n, mode, endpoints, via)));
            bench.record({ scenario: 'cluster', arm, mode, n, ...(mode === 'paced' && { targetDeliveriesPerSec: options.pacedDeliveries }), ...r, problems: integrityProblems(r) });
          } catch (err) {
            bench.record({ scenario: 'cluster', arm, mode, n, kind: 'gateway', error: (err as Error).message });
          }
        }
      }
    }
    await Promise.all(single.map((g) => g.stop()));
    single = [];

    const n = c.idleClients;
    bench.log(`cluster scenario: broker memory, ${n} idle subscriptions, one gateway on one node`);
    try {
      bench.record({ scenario: 'cluster-memory', arm: 'single', ...(await bench.attempt(`cluster memory single × ${n}`, () => idleOnce(bench, 'gateway', n))) });
    } catch (err) {
      bench.record({ scenario: 'cluster-memory', arm: 'single', n, error: (err as Error).message });
    }
    bench.log(`cluster scenario: broker memory, ${n} idle subscriptions through HAProxy on the cluster`);
    try {
      bench.record({ scenario: 'cluster-memory', arm: 'cluster', kind: 'gateway', ...(await clusterMemoryOnce(bench, rig, endpoints, n)) });
    } catch (err) {
      bench.record({ scenario: 'cluster-memory', arm: 'cluster', n, error: (err as Error).message });
    }
  } finally {
    await Promise.all(single.map((g) => g.stop()));
    bench.log(`cluster: stopping the rig (scripts/cluster.sh stop)`);
    await rig.stop();
  }
}
