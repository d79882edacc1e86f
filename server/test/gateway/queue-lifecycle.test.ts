/**
 * No zombie queues, no leaked channels: every way a subscription can end
 * removes its queue from RabbitMQ, and churn leaves the gateway's channel
 * count where it started.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { channelCount, deleteGatewayExchanges, eventually, listQueues, requireBroker } from '../support/broker.js';
import { spawnGateway } from '../support/child-gateway.js';
import { connectClient, startTestGateway, stopTestGateways, type TestGateway } from '../support/gateway.js';

let gateway: TestGateway;

beforeAll(async () => {
  await requireBroker();
  gateway = await startTestGateway();
});
afterAll(stopTestGateways);

describe('a subscription\'s queue is deleted', () => {
  it('when the client disconnects', async () => {
    const c = await connectClient(gateway.url);
    await c.mustSubscribe('builds.#');
    await c.mustSubscribe('logs.*.append');
    expect(await listQueues(gateway.queuePrefix)).toHaveLength(2);
    c.close();
    await eventually(async () => (await listQueues(gateway.queuePrefix)).length === 0, 'queues deleted after disconnect');
  });

  it('when the gateway process is killed with SIGKILL (the broker drops exclusive queues)', async () => {
    const child = await spawnGateway();
    try {
      const c = await connectClient(child.url);
      await c.mustSubscribe('builds.#');
      await c.mustSubscribe('logs.#');
      await c.mustSubscribe('#');
      const before = await listQueues(child.queuePrefix);
      expect(before.map((q) => ({ exclusive: q.exclusive, consumers: q.consumers }))).toEqual(Array(3).fill({ exclusive: true, consumers: 1 }));
      child.process.kill('SIGKILL');
      expect(await child.exited).toBe('SIGKILL');
      await eventually(async () => (await listQueues(child.queuePrefix)).length === 0, 'queues of the killed gateway gone');
      c.close();
    } finally {
      child.process.kill('SIGKILL');
      await deleteGatewayExchanges(child.exchange);
    }
  });

  it('when a subscribe is still being declared as the socket disconnects', async () => {
    const c = await connectClient(gateway.url);
    const pending = Array.from({ length: 20 }, () => c.subscribe('race.#').catch(() => undefined));
    c.close();
    await Promise.all(pending);
    await eventually(async () => (await listQueues(gateway.queuePrefix)).length === 0, 'no queue left by subscribes racing a disconnect');
  });
});

describe('churn', () => {
  it('200 subscribe/unsubscribe cycles, several in flight on one socket, leave no queue and the channel count where it started', async () => {
    const c = await connectClient(gateway.url);
    const baseline = await channelCount(gateway.connectionName);
    expect(baseline, 'the gateway\'s connection is visible on the broker').toBeGreaterThan(0);
    const inFlight = 8;
    const cyclesPerWorker = 25;
    const patterns = ['builds.*.finished', 'logs.#', '#', 'a.*.b.#'];
    await Promise.all(
      Array.from({ length: inFlight }, async (_, worker) => {
        for (let i = 0; i < cyclesPerWorker; i++) {
          const id = await c.mustSubscribe(patterns[(worker + i) % patterns.length]!);
          const ack = await c.unsubscribe(id);
          expect(ack).toEqual({ ok: true });
        }
      }),
    );
    expect(await listQueues(gateway.queuePrefix)).toEqual([]);
    expect(await channelCount(gateway.connectionName)).toBe(baseline);
    // The socket still works after all that.
    const id = await c.mustSubscribe('after.churn');
    await gateway.mq.produce('after.churn', { ok: true });
    expect((await c.messages.waitFor((m) => m.id === id)).body).toEqual({ ok: true });
    c.close();
  });
});
