/**
 * The shared topic matcher (used by the embedded broker and the SDK's tests)
 * agrees with RabbitMQ's own routing, the empty key included: RabbitMQ splits
 * it into no words, so `#` matches it and `*` does not.
 */
import amqp from 'amqplib';
import { compilePattern, topicMatches } from '@topicgate/shared';
import { beforeAll, describe, expect, it } from 'vitest';
import { requireBroker, TEST_AMQP_URL, uniqueName } from '../support/broker.js';

const PATTERNS = ['*', '#', '#.#', '*.#', '#.*', '*.*', 'a', 'a.*', 'a.#', '#.a', '#.a.#', '*.a'];
const KEYS = ['', 'a', 'b', 'a.b', 'b.a', 'a.a.a', 'b.b'];

beforeAll(requireBroker);

describe('topic matching', () => {
  it('routes exactly as RabbitMQ does, for every pattern × key of a table that includes the empty key', async () => {
    const connection = await amqp.connect(TEST_AMQP_URL);
    const exchange = uniqueName('topicgate-test-matching');
    try {
      const channel = await connection.createConfirmChannel();
      await channel.assertExchange(exchange, 'topic', { durable: false, autoDelete: true });
      const queues = new Map<string, string>();
      for (const pattern of PATTERNS) {
        const { queue } = await channel.assertQueue('', { exclusive: true });
        await channel.bindQueue(queue, exchange, pattern);
        queues.set(pattern, queue);
      }
      for (const key of KEYS) channel.publish(exchange, key, Buffer.from(JSON.stringify(key)));
      await channel.waitForConfirms();

      for (const pattern of PATTERNS) {
        const routed: string[] = [];
        for (let msg = await channel.get(queues.get(pattern)!, { noAck: true }); msg; msg = await channel.get(queues.get(pattern)!, { noAck: true })) {
          routed.push(JSON.parse(msg.content.toString()) as string);
        }
        const matcher = compilePattern(pattern);
        expect(KEYS.filter((key) => topicMatches(pattern, key)), `topicMatches("${pattern}", …)`).toEqual(routed);
        expect(KEYS.filter((key) => matcher(key)), `compilePattern("${pattern}")`).toEqual(routed);
      }
    } finally {
      await connection.close();
    }
  });
});
