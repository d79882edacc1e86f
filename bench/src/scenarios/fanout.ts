/**
 * Fan-out: N receivers, one subscription each matching every message, fed by
 * one publisher; flat out (deliveries/s) and paced (latency), through the
 * gateway (default and resumable subscriptions, each kind on gateways of its
 * own), raw amqplib consumers (the ceiling), Web-STOMP (the peer) and
 * Web-MQTT with persistent sessions at QoS 1 (the broker's own resumable
 * peer).
 */
import { drive, integrityProblems, type Bench, type DriveSpec, type GatewayEndpoint } from '../harness.js';
import type { ClientKind } from '../messages.js';

export const FANOUT_PATTERN = 'bench.fanout.#';
export const FANOUT_KEY = 'bench.fanout.tick';

/**
 * Web-MQTT consumes from amq.topic (rabbitmq.conf's mqtt.exchange, not
 * settable per client), so its runs publish there, under keys unique to the
 * run (`topicgate-bench.<run id>.fanout.tick`, MQTT topic
 * `topicgate-bench/<run id>/fanout/tick`) so that no other MQTT user and no
 * parallel bench sees them or feeds them.
 */
export function mqttRoute(bench: Bench): { exchange: string; pattern: string; key: string } {
  return { exchange: 'amq.topic', pattern: `topicgate-bench.${bench.runId}.fanout.#`, key: `topicgate-bench.${bench.runId}.fanout.tick` };
}

/** Where a fan-out run publishes and whose CPU it reports when not the bench's own broker (the cluster scenario). */
export type FanoutVia = Pick<DriveSpec, 'amqpUrl' | 'brokerPids' | 'extraPids'>;

export async function fanoutOnce(bench: Bench, kind: ClientKind, clients: number, mode: 'flat' | 'paced', gateways: readonly GatewayEndpoint[], via: FanoutVia = {}) {
  const { options } = bench;
  const mqtt = kind === 'mqtt' ? mqttRoute(bench) : null;
  // Any `rabbitmq-plugins enable` since the last run (someone else's too) has stopped Web-MQTT: see Broker.ensureWebMqtt.
  if (mqtt) await bench.broker.ensureWebMqtt(options.mqttUrl, (l) => bench.log(l));
  try {
    return await drive(bench, {
      kind,
      gateways,
      plans: Array.from({ length: clients }, () => ({ patterns: [mqtt?.pattern ?? FANOUT_PATTERN] })),
      publish: {
        keys: [mqtt?.key ?? FANOUT_KEY],
        firstStream: 0,
        mode,
        rate: Math.max(1, Math.round(options.pacedDeliveries / clients)),
        warmupMs: options.warmupMs,
        measureMs: options.measureMs,
        bodyBytes: options.bodyBytes,
      },
      ...(mode === 'flat' && { creditStream: 0 }),
      ...(mqtt && { exchange: mqtt.exchange }),
      ...via,
    });
  } finally {
    // Persistent sessions outlive DISCONNECT: their queues would keep filling from amq.topic.
    if (mqtt) await bench.deleteMqttSessions().catch((err: Error) => bench.warn(`could not delete this run's MQTT session queues: ${err.message}`));
    // Durable, bound to the fan-out pattern: left by a worker that died, they would fill and load the broker for the next runs.
    if (kind === 'amqp-held') await bench.deleteRawQueues().catch((err: Error) => bench.warn(`could not delete this run's amqp-held queues: ${err.message}`));
  }
}

export async function fanout(bench: Bench): Promise<void> {
  const { options } = bench;
  const gateways = options.kinds.includes('gateway') ? await bench.startGateways(options.gatewayProcesses) : [];
  const resumableGateways = options.kinds.includes('resumable') ? await bench.startResumableGateways(options.gatewayProcesses) : [];
  try {
    for (const clients of options.fanoutClients) {
      for (const mode of ['flat', 'paced'] as const) {
        // Kinds in turn, round after round: drift of the machine meanwhile falls on every kind alike.
        for (let round = 1; round <= options.rounds; round++) {
          const of = options.rounds > 1 ? { round } : {};
          for (const kind of options.kinds) {
            const what = `fan-out ${mode} ${kind} × ${clients}${options.rounds > 1 ? `, round ${round}/${options.rounds}` : ''}`;
            bench.log(what);
            try {
              const r = await bench.attempt(what, () => fanoutOnce(bench, kind, clients, mode, kind === 'resumable' ? resumableGateways : gateways));
              bench.record({ scenario: 'fanout', mode, n: clients, ...of, ...(mode === 'paced' && { targetDeliveriesPerSec: options.pacedDeliveries }), ...r, problems: integrityProblems(r) });
            } catch (err) {
              bench.record({ scenario: 'fanout', mode, n: clients, kind, ...of, error: (err as Error).message });
            }
          }
        }
      }
    }
  } finally {
    await Promise.all([...gateways, ...resumableGateways].map((g) => g.stop()));
  }
}
