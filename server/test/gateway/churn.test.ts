/**
 * No leaks under churn: thousands of subscribe/unsubscribe cycles across many
 * sockets, with random disconnects and broker errors injected from outside,
 * leave zero queues and the gateway's channel count where it started.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { channelCount, deleteQueueAsOperator, eventually, listQueues, requireBroker, withAdminChannel } from '../support/broker.js';
import { connectClient, startTestGateway, stopTestGateways, type TestClient, type TestGateway } from '../support/gateway.js';

const CYCLES = 10_000;
const SOCKETS = 24;
const PATTERNS = ['builds.*.finished', 'logs.#', '#', 'a.*.b.#', 'builds.42.*', '*.*'];

let gateway: TestGateway;

beforeAll(async () => {
  await requireBroker();
  gateway = await startTestGateway();
});
afterAll(stopTestGateways);

/** A deterministic PRNG, so a failing run can be replayed with its seed. */
function prng(seed: number): () => number {
  return () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
}

describe('churn', () => {
  it(`${CYCLES} cycles on ${SOCKETS} sockets with random disconnects and injected broker errors leave no queue and no extra channel`, async () => {
    const seed = Number(process.env.CHURN_SEED ?? Date.now() % 100_000);
    const random = prng(seed);
    const baseline = await channelCount(gateway.connectionName);
    expect(baseline).toBeGreaterThan(0);
    let remaining = CYCLES;
    let disconnects = 0;
    let injected = 0;
    let done = false;

    // Broker errors from outside while the churn runs: queues deleted by an operator, once the exchange itself.
    const saboteur = (async () => {
      while (!done) {
        const live = await listQueues(gateway.queuePrefix);
        const victim = live[Math.floor(random() * live.length)];
        if (victim) {
          await deleteQueueAsOperator(victim.name).catch(() => undefined); // it may have just been unsubscribed
          injected++;
        }
        if (injected === 5) await withAdminChannel((ch) => ch.deleteExchange(gateway.exchange));
      }
    })();

    const worker = async () => {
      let socket: TestClient = await connectClient(gateway.url);
      while (remaining > 0) {
        remaining--;
        const ack = await socket.subscribe(PATTERNS[Math.floor(random() * PATTERNS.length)]).catch(() => null);
        if (random() < 0.03) {
          // Disconnect with a subscribe possibly still in flight.
          void socket.subscribe('in.flight').catch(() => undefined);
          socket.close();
          disconnects++;
          socket = await connectClient(gateway.url);
          continue;
        }
        if (ack?.ok) {
          const result = await socket.unsubscribe(ack.id);
          // The saboteur may have ended it first; then the client was told so.
          if (!result.ok) expect(socket.unsubscribed.items.some((n) => n.id === ack.id && n.reason === 'queue_deleted')).toBe(true);
        }
      }
      socket.close();
    };
    try {
      await Promise.all(Array.from({ length: SOCKETS }, worker));
    } finally {
      done = true;
      await saboteur;
    }

    expect(disconnects, `seed ${seed}`).toBeGreaterThan(0);
    expect(injected, `seed ${seed}`).toBeGreaterThan(0);
    await eventually(async () => (await listQueues(gateway.queuePrefix)).length === 0, `no queue left (seed ${seed})`);
    await eventually(async () => (await channelCount(gateway.connectionName)) === baseline, `channel count back to ${baseline} (seed ${seed})`);
    await eventually(async () => /^topicgate_subscriptions 0$/m.test(await (await fetch(gateway.metricsUrl!)).text()), 'no subscription counted');
    const metrics = await (await fetch(gateway.metricsUrl!)).text();
    expect(metrics).toMatch(new RegExp(`^topicgate_broker_channels ${baseline}$`, 'm'));
  }, 180_000);
});
