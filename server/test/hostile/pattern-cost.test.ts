/**
 * One subscriber must not be able to slow RabbitMQ down for everyone. A topic
 * binding's routing cost grows exponentially with its `#` words, so the
 * gateway binds patterns in canonical form (`builds.#.#.#` is `builds.#`) and
 * refuses those with more than two `#` words. Measured on the real broker:
 * publish latency with the worst patterns a client can get bound, against a
 * baseline in the same run.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireBroker, TEST_AMQP_URL } from '../support/broker.js';
import { connectClient, startTestGateway, stopTestGateways, type TestClient } from '../support/gateway.js';

const run = promisify(execFile);
const clients: TestClient[] = [];

beforeAll(requireBroker);
afterAll(async () => {
  for (const c of clients.splice(0)) c.close();
  await stopTestGateways();
});

/** Milliseconds per confirmed publish to `key`, over batches, the median batch. */
async function publishCost(exchange: string, key: string): Promise<number> {
  const connection = await amqp.connect(TEST_AMQP_URL);
  try {
    const channel = await connection.createConfirmChannel();
    const perMessage: number[] = [];
    for (let batch = 0; batch < 7; batch++) {
      const started = performance.now();
      for (let i = 0; i < 200; i++) channel.publish(exchange, key, Buffer.from('{"n":1}'));
      await channel.waitForConfirms();
      perMessage.push((performance.now() - started) / 200);
    }
    return perMessage.sort((a, b) => a - b)[3]!;
  } finally {
    await connection.close();
  }
}

async function bindingKeys(queuePrefix: string): Promise<string[]> {
  const { stdout } = await run('rabbitmqctl', ['-q', '--no-table-headers', 'list_bindings', 'destination_name', 'routing_key']);
  return stdout
    .split('\n')
    .map((line) => line.split('\t'))
    .filter(([queue]) => queue?.startsWith(queuePrefix))
    .map(([, key]) => key!)
    .filter((key) => !key.startsWith(queuePrefix)) // the default exchange's binding to the queue's own name
    .sort();
}

describe('patterns that would make the broker slow for everyone', () => {
  it('are bound in canonical form or refused, so publish latency stays within a small factor of a plain subscription', async () => {
    const gateway = await startTestGateway();
    const c = await connectClient(gateway.url);
    clients.push(c);
    const key = 'builds.a.a.a.a.a.a.a.a.a'; // 10 words, each a match for a literal an attacker may pick

    // The baseline: as many queues, plain patterns. Then the same count with the worst a client can try.
    const plain = [await c.mustSubscribe('builds.#'), await c.mustSubscribe('builds.#'), await c.mustSubscribe('builds.#')];
    const baseline = await publishCost(gateway.exchange, key);
    for (const id of plain.slice(1)) await c.unsubscribe(id);
    await c.mustSubscribe('builds.#.#.#.#.#.#.#.#');
    await c.mustSubscribe('builds.#.a.#');
    const refused = await c.subscribe('#.a.#.a.#.a.#');
    const attacked = await publishCost(gateway.exchange, key);

    expect(attacked / baseline, `baseline ${baseline.toFixed(3)} ms, with the attack ${attacked.toFixed(3)} ms per publish`).toBeLessThan(5);
    expect(refused).toEqual({ ok: false, error: { code: 'invalid_pattern', message: expect.stringMatching(/has 4 "#" words; at most 2/) } });
    expect(await bindingKeys(gateway.queuePrefix)).toEqual(['builds.#', 'builds.#', 'builds.#.a.#']);
  }, 120_000);
});
