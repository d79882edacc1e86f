/**
 * One contract, two brokers: every case here runs unchanged against the
 * embedded connector and against RabbitMQ through the amqp connector. The
 * routing table's expectations are therefore checked against RabbitMQ's own
 * topic routing, and the embedded broker is held to the same answers.
 */
import { once } from 'node:events';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AmqpConnector } from '../../src/mq/amqp.js';
import type { MqConnector, MqMessage } from '../../src/mq/connector.js';
import { EmbeddedConnector } from '../../src/mq/embedded.js';
import { closeConnections, deleteExchange, deleteQueues, quietLog, requireBroker, TEST_AMQP_URL, uniqueName } from '../support/broker.js';
import { Inbox } from '../support/inbox.js';
import { ROUTING_CASES } from '../../../shared/test/routing-cases.js';

/** A key the pattern certainly matches, published last: it proves everything before it was routed. */
function sentinelFor(pattern: string): string {
  const words = pattern.split('.').filter((w) => w !== '#').map((w) => (w === '*' ? 'sentinel' : w));
  return words.length > 0 ? words.join('.') : 'sentinel';
}

/** Each connection gets its own exchange, deleted after the suite (the gateway itself never deletes one). */
const exchanges: string[] = [];
function testExchange(): string {
  const name = uniqueName('topicgate-test');
  exchanges.push(name);
  return name;
}

interface Backend {
  name: string;
  connect(): Promise<MqConnector>;
  /** Removes durable queues that persistent consumers left behind. */
  cleanup(persistentNames: string[]): Promise<void>;
  /** Makes the broker drop the connector's connection; absent where there is no connection to lose (embedded). */
  loseConnection?(mq: MqConnector): Promise<void>;
}

const backends: Backend[] = [
  {
    name: 'embedded',
    connect: async () => new EmbeddedConnector({ queuePrefix: `${uniqueName('topicgate.test')}.` }),
    cleanup: async () => undefined,
  },
  {
    name: 'amqp (RabbitMQ)',
    connect: () =>
      AmqpConnector.connect({
        urls: [TEST_AMQP_URL],
        exchange: testExchange(),
        queuePrefix: `${uniqueName('topicgate.test')}.`,
        connectionName: uniqueName('topicgate-conformance'),
        log: quietLog,
      }),
    cleanup: async (names) => {
      await deleteQueues(names);
      for (const exchange of exchanges.splice(0)) await deleteExchange(exchange);
    },
    loseConnection: (mq) => closeConnections((mq as AmqpConnector).options.connectionName, 'test: force a reconnect'),
  },
];

describe.each(backends)('MQ connector contract: $name', (backend) => {
  let mq: MqConnector;
  const persistentNames: string[] = [];

  beforeAll(async () => {
    if (backend.name.startsWith('amqp')) await requireBroker();
  });
  afterEach(async () => {
    await mq?.close();
  });
  afterAll(async () => {
    await backend.cleanup(persistentNames);
  });

  it('delivers a produced message to a matching consumer, with the body as published and Dates as epoch seconds', async () => {
    mq = await backend.connect();
    const inbox = new Inbox<MqMessage>();
    await mq.startConsuming('builds.*.finished', inbox.push);
    const finishedAt = new Date('2026-01-02T03:04:05.250Z');
    await mq.produce('builds.42.finished', { id: 42, result: 'success', finishedAt, nested: { at: finishedAt, list: [1, 'two', null] } });
    const [message] = await inbox.waitForCount(1);
    const body = { id: 42, result: 'success', finishedAt: 1767323045.25, nested: { at: 1767323045.25, list: [1, 'two', null] } };
    expect(message).toEqual({ key: 'builds.42.finished', body, json: JSON.stringify(body), size: JSON.stringify(body).length });
  });

  it('reports size in bytes of the body as published, not in characters', async () => {
    mq = await backend.connect();
    const inbox = new Inbox<MqMessage>();
    await mq.startConsuming('greetings.#', inbox.push);
    const body = { text: 'Grüße, 世界 🚀' };
    await mq.produce('greetings.de', body);
    const [message] = await inbox.waitForCount(1);
    expect(message!.json).toBe(JSON.stringify(body));
    expect(message!.size).toBe(Buffer.byteLength(JSON.stringify(body), 'utf8'));
    expect(message!.size).toBeGreaterThan(message!.json.length);
  });

  it('routes exactly as RabbitMQ topic exchanges do (routing table)', async () => {
    mq = await backend.connect();
    const patterns = [...new Set(ROUTING_CASES.map(([pattern]) => pattern))];
    const inboxes = new Map(patterns.map((pattern) => [pattern, new Inbox<string>()]));
    for (const pattern of patterns) {
      const inbox = inboxes.get(pattern)!;
      await mq.startConsuming(pattern, (m) => inbox.push(m.key));
    }
    const keys = [...new Set(ROUTING_CASES.map(([, key]) => key))];
    for (const key of keys) await mq.produce(key, { key });
    for (const pattern of patterns) await mq.produce(sentinelFor(pattern), { sentinel: true });

    for (const pattern of patterns) {
      const inbox = inboxes.get(pattern)!;
      await inbox.waitFor((key) => key === sentinelFor(pattern));
    }
    const mismatches = ROUTING_CASES.filter(([pattern, key, routed]) => inboxes.get(pattern)!.items.includes(key) !== routed);
    expect(mismatches, 'cases where routing differs from the table').toEqual([]);
  });

  it('stops delivering after stopConsuming, and other consumers keep receiving', async () => {
    mq = await backend.connect();
    const stopped = new Inbox<string>();
    const live = new Inbox<string>();
    const consumer = await mq.startConsuming('logs.#', (m) => stopped.push(m.key));
    await mq.startConsuming('logs.#', (m) => live.push(m.key));
    await mq.produce('logs.1.append', {});
    await stopped.waitForCount(1);
    await consumer.stopConsuming();
    await consumer.stopConsuming(); // idempotent
    await mq.produce('logs.2.append', {});
    await live.waitFor((key) => key === 'logs.2.append');
    expect(stopped.items).toEqual(['logs.1.append']);
  });

  it('keeps messages for a persistent consumer while it is stopped and delivers them on restart', async () => {
    mq = await backend.connect();
    const name = uniqueName('topicgate.test.persistent');
    persistentNames.push(name);
    const first = new Inbox<number>();
    const consumer = await mq.startConsuming('jobs.#', (m) => first.push(m.body.n as number), { persistentName: name });
    await mq.produce('jobs.a', { n: 1 });
    await first.waitForCount(1);
    await consumer.stopConsuming();
    for (const n of [2, 3, 4]) await mq.produce('jobs.a', { n });
    const second = new Inbox<number>();
    await mq.startConsuming('jobs.#', (m) => second.push(m.body.n as number), { persistentName: name });
    expect(await second.waitForCount(3)).toEqual([2, 3, 4]);
  });

  it('shares the messages of one persistent name between its consumers, each message once', async () => {
    mq = await backend.connect();
    const name = uniqueName('topicgate.test.shared');
    persistentNames.push(name);
    const all = new Inbox<{ worker: string; n: number }>();
    await mq.startConsuming('work.#', (m) => all.push({ worker: 'a', n: m.body.n as number }), { persistentName: name });
    await mq.startConsuming('work.#', (m) => all.push({ worker: 'b', n: m.body.n as number }), { persistentName: name });
    const count = 40;
    for (let n = 0; n < count; n++) await mq.produce('work.item', { n });
    const received = await all.waitForCount(count);
    expect(received.map((r) => r.n).sort((x, y) => x - y)).toEqual([...Array(count).keys()]);
    expect(new Set(received.map((r) => r.worker))).toEqual(new Set(['a', 'b']));
  });

  it('resolves produce only once the message has been taken, so a consumer started later on a persistent queue gets it', async () => {
    mq = await backend.connect();
    const name = uniqueName('topicgate.test.confirm');
    persistentNames.push(name);
    const bind = await mq.startConsuming('confirm.#', () => undefined, { persistentName: name });
    await bind.stopConsuming();
    await mq.produce('confirm.me', { n: 1 });
    const inbox = new Inbox<MqMessage>();
    await mq.startConsuming('confirm.#', inbox.push, { persistentName: name });
    expect((await inbox.waitForCount(1))[0]!.body).toEqual({ n: 1 });
  });

  it('is up only while every consumer consumes: after a lost connection, isUp and then reconnected once all are recovered', async () => {
    mq = await backend.connect();
    const count = 20;
    const keys = Array.from({ length: count }, (_, i) => `ready.${i}`);
    const inboxes = keys.map(() => new Inbox<string>());
    const resynced = new Set<string>();
    for (const [i, key] of keys.entries()) {
      await mq.startConsuming(key, (m) => inboxes[i]!.push(m.key), { onResync: () => resynced.add(key) });
    }
    expect(mq.isUp).toBe(true);

    if (backend.loseConnection) {
      const down = once(mq, 'down');
      const reconnected = once(mq, 'reconnected').then(() => ({ isUp: mq.isUp, resynced: resynced.size }));
      await backend.loseConnection(mq);
      await down;
      expect(mq.isUp).toBe(false);
      // Readiness is looked at from outside (/readyz) at any moment: poll it every turn of the event loop.
      while (!mq.isUp) await new Promise((resolve) => setImmediate(resolve));
      expect(resynced.size, 'consumers recovered when isUp turned true').toBe(count);
      expect(await reconnected).toEqual({ isUp: true, resynced: count });
    }

    // Up means consuming: a message produced now reaches every consumer.
    for (const key of keys) await mq.produce(key, {});
    for (const [i, key] of keys.entries()) expect(await inboxes[i]!.waitForCount(1)).toEqual([key]);
  });

  it('rejects invalid routing keys and non-object bodies on produce', async () => {
    mq = await backend.connect();
    await expect(mq.produce('a..b', {})).rejects.toThrow(/empty word/);
    await expect(mq.produce('a.*', {})).rejects.toThrow(/invalid word/);
    await expect(mq.produce('a.b', [] as never)).rejects.toThrow(/JSON object/);
  });
});
