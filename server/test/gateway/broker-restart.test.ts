/**
 * RabbitMQ itself restarts (`rabbitmqctl stop_app` / `start_app`: every
 * connection closed, every transient queue gone). The test brings the broker
 * back whatever happens.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, listQueues, requireBroker } from '../support/broker.js';
import { connectClient, startTestGateway, stopTestGateways } from '../support/gateway.js';

const run = promisify(execFile);

beforeAll(requireBroker);
afterAll(stopTestGateways);

describe('a RabbitMQ restart', () => {
  it('is survived: readyz goes 503 then 200, queues come back under the same names, clients get resync and receive again', async () => {
    const gateway = await startTestGateway();
    const c = await connectClient(gateway.url);
    const ids = [await c.mustSubscribe('builds.#'), await c.mustSubscribe('logs.*.append')];
    try {
      await run('rabbitmqctl', ['-q', 'stop_app']);
      await eventually(async () => (await fetch(`${gateway.url}/readyz`)).status === 503, 'readyz 503 while the broker is down');
    } finally {
      await run('rabbitmqctl', ['-q', 'start_app']);
      await run('rabbitmqctl', ['-q', 'await_startup']);
    }
    const resyncs = await c.resyncs.waitForCount(2, 30_000);
    expect(resyncs.map((r) => r.id).sort()).toEqual([...ids].sort());
    expect(resyncs.every((r) => r.reason === 'reconnected')).toBe(true);
    expect((await fetch(`${gateway.url}/readyz`)).status).toBe(200);
    expect((await listQueues(gateway.queuePrefix)).map((q) => q.name).sort()).toEqual(ids.map((id) => `${gateway.queuePrefix}${id}`).sort());
    await gateway.mq.produce('logs.3.append', { line: 'after restart' });
    expect((await c.messages.waitFor((m) => m.id === ids[1])).body).toEqual({ line: 'after restart' });
    c.close();
  }, 90_000);
});
