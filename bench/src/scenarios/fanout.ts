/**
 * Fan-out: N receivers, one subscription each matching every message, fed by
 * one publisher; flat out (deliveries/s) and paced (latency), through the
 * gateway, raw amqplib consumers (the ceiling) and Web-STOMP (the peer).
 */
import { drive, integrityProblems, type Bench } from '../harness.js';
import type { ClientKind } from '../messages.js';
import type { GatewayProcess } from '../processes.js';

export const FANOUT_PATTERN = 'bench.fanout.#';
export const FANOUT_KEY = 'bench.fanout.tick';

export async function fanoutOnce(bench: Bench, kind: ClientKind, clients: number, mode: 'flat' | 'paced', gateways: readonly GatewayProcess[]) {
  const { options } = bench;
  return drive(bench, {
    kind,
    gateways,
    plans: Array.from({ length: clients }, () => ({ patterns: [FANOUT_PATTERN] })),
    publish: {
      keys: [FANOUT_KEY],
      firstStream: 0,
      mode,
      rate: Math.max(1, Math.round(options.pacedDeliveries / clients)),
      warmupMs: options.warmupMs,
      measureMs: options.measureMs,
      bodyBytes: options.bodyBytes,
    },
    ...(mode === 'flat' && { creditStream: 0 }),
  });
}

export async function fanout(bench: Bench): Promise<void> {
  const { options } = bench;
  const gateways = options.kinds.includes('gateway') ? await bench.startGateways(options.gatewayProcesses) : [];
  try {
    for (const clients of options.fanoutClients) {
      for (const mode of ['flat', 'paced'] as const) {
        for (const kind of options.kinds) {
          bench.log(`fan-out ${mode} ${kind} × ${clients}`);
          try {
            const r = await bench.attempt(`fan-out ${mode} ${kind} × ${clients}`, () => fanoutOnce(bench, kind, clients, mode, gateways));
            bench.record({ scenario: 'fanout', mode, n: clients, ...(mode === 'paced' && { targetDeliveriesPerSec: options.pacedDeliveries }), ...r, problems: integrityProblems(r) });
          } catch (err) {
            bench.record({ scenario: 'fanout', mode, n: clients, kind, error: (err as Error).message });
          }
        }
      }
    }
  } finally {
    await Promise.all(gateways.map((g) => g.stop()));
  }
}
