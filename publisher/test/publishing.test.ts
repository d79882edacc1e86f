/**
 * createPublisher against the real RabbitMQ: what a back end relies on when
 * it publishes — a confirmed publish is on the broker, every message says
 * what it is and when it was made, an outage loses nothing and reorders
 * nothing, a full buffer says so, and a dead node in the URL list is skipped.
 */
import { once } from 'node:events';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { deleteExchange, requireBroker, TEST_AMQP_URL, uniqueName, withAdminChannel } from '../../server/test/support/broker.js';
import { TcpProxy } from '../../server/test/support/tcp-proxy.js';
import { BufferFullError, createPublisher, PublishError, PublishErrorCode, type Publisher, type PublisherOptions, type PublisherTransport } from '../src/index.js';
import { BrokerConsumer } from './broker-consumer.js';

interface Topics {
  'builds.{id}.finished': { id: number; version: number; result: 'success' | 'failure' };
  'logs.{id}.append': { first: number; lines: string[] };
}

const exchange = uniqueName('topicgate-publisher-test');
let consumer: BrokerConsumer;
const publishers: Array<Pick<Publisher, 'close'>> = [];
const proxies: TcpProxy[] = [];

/** Reconnects quickly: the tests wait for events, not for backoff. */
function publisher(options: Partial<PublisherOptions> = {}): Publisher<Topics> {
  const p = createPublisher<Topics>({ urls: TEST_AMQP_URL, exchange, reconnectDelayMs: { initial: 20, max: 200 }, connectionName: 'topicgate publisher test', ...options });
  publishers.push(p);
  return p;
}

async function proxy(): Promise<TcpProxy> {
  const p = await TcpProxy.start();
  proxies.push(p);
  return p;
}

const finished = (id: number) => ({ id, version: 1, result: 'success' as const });
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

beforeAll(async () => {
  await requireBroker();
  consumer = await BrokerConsumer.start(exchange);
});
afterEach(async () => {
  await Promise.all(publishers.splice(0).map((p) => p.close({ timeoutMs: 0 })));
  await Promise.all(proxies.splice(0).map((p) => p.close()));
  consumer.inbox.items.splice(0);
});
afterAll(async () => {
  await consumer?.close();
  await deleteExchange(exchange);
});

describe('createPublisher on RabbitMQ', () => {
  it('resolves once the broker confirmed, each message with a unique message_id, a timestamp and content_type application/json', async () => {
    const p = publisher();
    const before = Math.floor(Date.now() / 1000);
    await p.publish('builds.1.finished', finished(1));
    await p.publish('builds.2.finished', finished(2));
    await p.publish('logs.2.append', { first: 0, lines: ['José ✓'] });
    const after = Math.ceil(Date.now() / 1000);
    expect(p.buffered).toBe(0);

    const received = await consumer.inbox.waitForCount(3);
    expect(received.map((m) => [m.key, m.body])).toEqual([
      ['builds.1.finished', finished(1)],
      ['builds.2.finished', finished(2)],
      ['logs.2.append', { first: 0, lines: ['José ✓'] }],
    ]);
    for (const m of received) {
      expect(m).toMatchObject({ contentType: 'application/json', contentEncoding: 'utf-8', deliveryMode: 2 });
      expect(m.messageId).toMatch(UUID);
      expect(m.timestamp).toBeGreaterThanOrEqual(before);
      expect(m.timestamp).toBeLessThanOrEqual(after);
    }
    expect(new Set(received.map((m) => m.messageId)).size).toBe(3);
  });

  it('buffers what is published while the connection is cut and delivers all of it, in order, once the broker is back', async () => {
    const cut = await proxy();
    const p = publisher({ urls: cut.amqpUrl() });
    await p.publish('builds.1.finished', finished(1));

    const disconnected = once(p, 'disconnected');
    cut.cut();
    await disconnected;
    expect(p.connected).toBe(false);
    const during = Array.from({ length: 20 }, (_, i) => p.publish('logs.7.append', { first: i, lines: [`line ${i}`] }));
    expect(p.buffered).toBe(20);

    const reconnected = once(p, 'connected');
    cut.restore();
    await reconnected;
    await Promise.all(during);
    expect(p.buffered).toBe(0);

    const received = await consumer.inbox.waitForCount(21);
    expect(received.map((m) => m.body)).toEqual([finished(1), ...Array.from({ length: 20 }, (_, i) => ({ first: i, lines: [`line ${i}`] }))]);
  });

  it('sends again what was in flight when the connection broke: nothing lost, first copies in order, copies sharing a message_id', async () => {
    const cut = await proxy();
    const p = publisher({ urls: cut.amqpUrl() });
    await once(p, 'connected');
    const count = 300;
    const total = count + 50;
    const published = Array.from({ length: count }, (_, i) => p.publish('logs.8.append', { first: i, lines: [`line ${i}`] }));
    // Some of these frames may have reached the broker; none has been confirmed yet.
    cut.cut();
    await once(p, 'disconnected');
    // Published during the outage: they must follow what was in flight, not overtake it.
    for (let i = count; i < total; i++) published.push(p.publish('logs.8.append', { first: i, lines: [`line ${i}`] }));
    cut.restore();
    await Promise.all(published);

    await consumer.inbox.waitFor(() => new Set(consumer.inbox.items.map((m) => m.messageId)).size === total, 15_000);
    const firsts = new Map<unknown, number>();
    for (const m of consumer.inbox.items) {
      const { first } = m.body as { first: number };
      const seen = firsts.get(m.messageId);
      if (seen === undefined) firsts.set(m.messageId, first);
      else expect(seen, 'a copy carries the message_id of its original').toBe(first);
    }
    expect([...firsts.values()]).toEqual(Array.from({ length: total }, (_, i) => i));
  });

  it('refuses a message once maxBuffered wait, saying the broker is unreachable and what to do; close() fails what waited', async () => {
    const dead = await proxy();
    dead.cut(); // refuses every connection
    const p = publisher({ urls: dead.amqpUrl(), maxBuffered: 3 });
    const retrying = once(p, 'retrying');
    const waiting = [1, 2, 3].map((id) => p.publish(`builds.${id}.finished`, finished(id)));
    const settled = Promise.allSettled(waiting);
    await retrying;

    const refused = await p.publish('builds.4.finished', finished(4)).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(BufferFullError);
    expect(refused).toMatchObject({ code: PublishErrorCode.BufferFull, limit: 3 });
    const message = (refused as Error).message;
    expect(message).toContain('builds.4.finished');
    expect(message).toContain('was not published');
    expect(message).toContain('3 messages already wait');
    expect(message).toMatch(/unreachable since \S+ \(could not publish to any broker/);
    expect(message).toContain('raise maxBuffered');
    expect(message).toContain(`127.0.0.1:${dead.port}`);
    expect(message).not.toContain('guest:guest');

    await p.close({ timeoutMs: 0 });
    for (const result of await settled) {
      expect(result.status).toBe('rejected');
      const reason = (result as PromiseRejectedResult).reason as PublishError;
      expect(reason.code).toBe(PublishErrorCode.Closed);
      expect(reason.message).toMatch(/it was not published \(the broker was unreachable/);
    }
    await expect(p.publish('builds.5.finished', finished(5))).rejects.toMatchObject({ code: PublishErrorCode.Closed });
    expect(consumer.inbox.items).toEqual([]);
  });

  it('after a long outage and a healthy spell with nothing to publish, the next outage retries from the shortest delay', async () => {
    const cut = await proxy();
    const p = publisher({ urls: cut.amqpUrl(), reconnectDelayMs: { initial: 20, max: 200 } });
    await once(p, 'connected');
    const delays: number[] = [];
    p.on('retrying', (_err: Error, delay: number) => delays.push(delay));
    cut.cut();
    await once(p, 'disconnected');
    // Enough failed attempts that the delay has reached its ceiling (20 · 2^4 > 200).
    while (delays.length < 6) await once(p, 'retrying');
    expect(delays.at(-1)).toBeGreaterThanOrEqual(100); // equal jitter: at least half of the 200 ms ceiling
    cut.restore();
    await once(p, 'connected');
    // Idle: nothing is confirmed. Staying up for the longest delay is what counts as healthy; the wait is the condition tested.
    await new Promise((resolve) => setTimeout(resolve, 300));
    delays.length = 0;
    cut.cut();
    await once(p, 'retrying');
    expect(delays[0]).toBeLessThanOrEqual(20);
  });

  it('refuses reconnect delays it could not keep, saying which', () => {
    for (const reconnectDelayMs of [{ initial: 0, max: 100 }, { initial: 200, max: 100 }, { initial: 200, max: 2 ** 31 }]) {
      expect(() => createPublisher({ urls: TEST_AMQP_URL, exchange, reconnectDelayMs })).toThrow(/reconnectDelayMs must have 0 < initial ≤ max ≤ 2147483647/);
    }
  });

  it('a link that fails as soon as it opens keeps backing off: no reconnect loop', async () => {
    // A broker that accepts and drops every connection at once (a full vhost, a proxy in trouble).
    const flapping: PublisherTransport = {
      description: 'a flapping broker',
      open: async () => {
        let fail: (error: Error) => void = () => undefined;
        setImmediate(() => fail(new Error('connection dropped')));
        return { where: 'flapping', send: () => new Promise(() => undefined), onFailure: (cb) => void (fail = cb), close: async () => undefined };
      },
    };
    const p = publisher({ transport: flapping, reconnectDelayMs: { initial: 5, max: 1000 } });
    const delays: number[] = [];
    p.on('retrying', (_err: Error, delay: number) => delays.push(delay));
    while (delays.length < 6) await once(p, 'retrying');
    // Equal jitter: attempt k waits between half and all of 5 · 2^k ms.
    expect(delays[5]).toBeGreaterThanOrEqual(80);
  });

  it('skips a dead node of the URL list and publishes through the next', async () => {
    const dead = await proxy();
    dead.cut();
    const p = publisher({ urls: [dead.amqpUrl(), TEST_AMQP_URL] });
    const connected = once(p, 'connected');
    await p.publish('builds.9.finished', finished(9));
    const [where] = (await connected) as [string];
    expect(new URL(where).port).toBe(new URL(TEST_AMQP_URL).port || '5672');
    expect((await consumer.inbox.waitForCount(1))[0]!.key).toBe('builds.9.finished');
  });

  it('close() waits until everything published is confirmed, and takes nothing afterwards', async () => {
    const p = publisher();
    const published = Array.from({ length: 100 }, (_, i) => p.publish('logs.3.append', { first: i, lines: ['x'] }));
    await p.close();
    await Promise.all(published);
    expect((await consumer.inbox.waitForCount(100)).map((m) => (m.body as { first: number }).first)).toEqual(published.map((_, i) => i));
    await expect(p.publish('logs.3.append', { first: 100, lines: ['y'] })).rejects.toThrow(/after close\(\)/);
  });

  it('fails a message a queue refused (full, reject-publish) with not_confirmed, sends it nowhere again, and goes on', async () => {
    // What a resumable subscription's queue does at its backlog limit (docs/protocol.md §15.5).
    const full = uniqueName('topicgate-publisher-full');
    await withAdminChannel(async (channel) => {
      await channel.assertQueue(full, { durable: false, autoDelete: false, arguments: { 'x-max-length': 0, 'x-overflow': 'reject-publish' } });
      await channel.bindQueue(full, exchange, 'builds.*.finished');
    });
    try {
      const p = publisher();
      const refused = await p.publish('builds.10.finished', finished(10)).catch((err: unknown) => err);
      expect(refused).toBeInstanceOf(PublishError);
      expect(refused).toMatchObject({ code: PublishErrorCode.NotConfirmed });
      expect((refused as Error).message).toMatch(/refused to confirm the message to "builds.10.finished".*reject-publish/);
      await p.publish('logs.10.append', { first: 0, lines: ['after'] });
      const received = await consumer.inbox.waitForCount(2);
      // The other queue (ours) got it once: no retry duplicated it.
      expect(received.map((m) => m.key)).toEqual(['builds.10.finished', 'logs.10.append']);
    } finally {
      await withAdminChannel((channel) => channel.deleteQueue(full));
    }
  });

  it('refuses an invalid routing key or a body that is not a JSON object before anything is sent', async () => {
    const p = createPublisher({ urls: TEST_AMQP_URL, exchange });
    publishers.push(p);
    await expect(p.publish('builds..finished', { id: 1 })).rejects.toThrow(TypeError);
    await expect(p.publish('builds.*.finished', { id: 1 })).rejects.toThrow(/wildcards are allowed in patterns, not in routing keys/);
    await expect(p.publish('builds.1.finished', [1, 2] as unknown as object as Record<string, unknown>)).rejects.toThrow(/must be a JSON object/);
    await p.publish('builds.1.finished', { id: 1, at: new Date(1_700_000_000_000) });
    expect((await consumer.inbox.waitForCount(1)).map((m) => m.body)).toEqual([{ id: 1, at: 1_700_000_000 }]);
  });
});
