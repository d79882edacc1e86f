/**
 * Churn: subscribe + unsubscribe pairs per second, each pair waiting for both
 * acknowledgements, through the gateway (queue declared, bound, consumed,
 * cancelled, deleted behind each pair) and against the same broker work done
 * directly over AMQP (declare/bind/consume/cancel/delete on a long-lived
 * channel) in the same run; also with resumable subscriptions (`subscribe
 * { resumable: true }` on a gateway with a resume window: a durable queue
 * with x-expires, a marker message and a channel of its own behind each).
 */
import type { Bench } from '../harness.js';
import { isGatewayKind, type ChurnResult, type ClientKind } from '../messages.js';
import { CpuMeter, findBrokerPid } from '../proc.js';
import type { GatewayProcess } from '../processes.js';
import { MergedHistogram } from '../stats.js';

const CHURN_PATTERN = 'bench.churn.#';

async function churnOnce(bench: Bench, kind: ClientKind, gateway: GatewayProcess | null) {
  const { options } = bench;
  const loops = options.churnLoops;
  const workerCount = Math.min(options.workers, loops);
  await gateway?.ready();
  bench.brokerPid = findBrokerPid() || bench.brokerPid;
  return bench.withWorkers(workerCount, async (workers) => {
    const conn = await bench.connect(workers, kind, Array.from({ length: loops }, () => ({ patterns: [] })), gateway ? [gateway] : []);
    if (conn.connected < loops) throw new Error(`only ${conn.connected}/${loops} ${kind} clients connected: ${conn.failures.join('; ')}`);
    const meter = new CpuMeter(() => ({
      ...(gateway && isGatewayKind(kind) ? { gateway: [gateway.pid] } : {}),
      broker: [bench.brokerPid],
      generators: workers.map((w) => w.pid),
    }));
    const started = performance.now();
    const results = await Promise.all(
      workers.map((w, i) =>
        w.request<ChurnResult>({ op: 'churn', durationMs: options.churnMs, loops: Math.floor(loops / workerCount) + (i < loops % workerCount ? 1 : 0), pattern: CHURN_PATTERN }),
      ),
    );
    const seconds = (performance.now() - started) / 1000;
    const cpu = meter.read();
    const latency = new MergedHistogram();
    for (const r of results) latency.add(r.latency);
    const pairs = results.reduce((s, r) => s + r.pairs, 0);
    const errors = results.reduce((s, r) => s + r.errors, 0);
    const round = (x: number | null) => (x === null ? null : Math.round(x * 100) / 100);
    return {
      kind,
      concurrency: loops,
      pairs,
      pairsPerSec: Math.round(pairs / seconds),
      p50Ms: round(latency.quantileMs(0.5)),
      p99Ms: round(latency.quantileMs(0.99)),
      errors,
      ...(errors && { firstError: results.find((r) => r.firstError)?.firstError }),
      cpu,
    };
  });
}

export async function churn(bench: Bench): Promise<void> {
  const kinds = bench.options.kinds.filter((k) => k === 'gateway' || k === 'resumable' || k === 'amqp');
  for (const kind of kinds) {
    bench.log(`churn ${kind}`);
    const gateway = kind === 'gateway' ? await bench.startGateway() : kind === 'resumable' ? (await bench.startResumableGateways(1))[0]! : null;
    try {
      bench.record({ scenario: 'churn', ...(await bench.attempt(`churn ${kind}`, () => churnOnce(bench, kind, gateway))) });
    } catch (err) {
      bench.record({ scenario: 'churn', kind, error: (err as Error).message });
    } finally {
      await gateway?.stop();
    }
  }
}
