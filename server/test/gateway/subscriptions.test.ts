/**
 * Protocol v1 on a real gateway and RabbitMQ: what a browser subscribing to a
 * pattern can rely on.
 */
import { listQueues } from '../support/broker.js';
import { describe, expect, publishRaw, test as it } from '../support/kit.js';

describe('subscribing to a pattern', () => {
  it('delivers messages published after the ack, with id, key, body and seq 1, 2, 3; others are not delivered', async ({ gateway, client: c }) => {
    const id = await c.mustSubscribe('builds.*.finished');
    await gateway.mq.produce('builds.1.started', { id: 1 });
    await gateway.mq.produce('builds.1.finished', { id: 1, result: 'success' });
    await gateway.mq.produce('builds.2.finished', { id: 2, result: 'failure' });
    await gateway.mq.produce('builds.2.steps.1.finished', { id: 2 });
    await gateway.mq.produce('builds.3.finished', { id: 3, result: 'success', version: 4 });
    const received = await c.messages.waitForCount(3);
    expect(received).toEqual([
      { id, key: 'builds.1.finished', body: { id: 1, result: 'success' }, seq: 1 },
      { id, key: 'builds.2.finished', body: { id: 2, result: 'failure' }, seq: 2 },
      { id, key: 'builds.3.finished', body: { id: 3, result: 'success', version: 4 }, seq: 3 },
    ]);
    // A sentinel on the same pattern proves nothing else was on its way.
    await gateway.mq.produce('builds.sentinel.finished', {});
    await c.messages.waitFor((m) => m.key === 'builds.sentinel.finished');
    expect(c.messages.items.map((m) => m.key)).not.toContain('builds.1.started');
  });

  it('gives every client with a matching pattern its own copy, and one copy per matching subscription on a socket', async ({ gateway, client: a, connect }) => {
    const b = await connect(gateway.url);
    const aAll = await a.mustSubscribe('logs.#');
    const aSeven = await a.mustSubscribe('logs.7.*');
    const bSeven = await b.mustSubscribe('*.7.append');
    await gateway.mq.produce('logs.7.append', { line: 1 });
    await a.messages.waitForCount(2);
    await b.messages.waitForCount(1);
    expect(a.deliveriesFor(aAll)).toEqual([{ id: aAll, key: 'logs.7.append', body: { line: 1 }, seq: 1 }]);
    expect(a.deliveriesFor(aSeven)).toEqual([{ id: aSeven, key: 'logs.7.append', body: { line: 1 }, seq: 1 }]);
    expect(b.deliveriesFor(bSeven)).toEqual([{ id: bSeven, key: 'logs.7.append', body: { line: 1 }, seq: 1 }]);
  });

  it('keeps seq contiguous per subscription across batches', async ({ gateway, client: c }) => {
    const id = await c.mustSubscribe('seq.#');
    const count = 500;
    await Promise.all(Array.from({ length: count }, (_, n) => gateway.mq.produce('seq.x', { n })));
    const received = await c.messages.waitForCount(count);
    expect(received.map((m) => m.seq)).toEqual(Array.from({ length: count }, (_, i) => i + 1));
    expect(received.every((m) => m.id === id)).toBe(true);
  });

  it('relays keys and bodies with characters that need escaping exactly as published', async ({ gateway, client: c }) => {
    const id = await c.mustSubscribe('#');
    const body = { text: 'quote " backslash \\ newline \n unicode é \u2028 emoji 🎉', nested: { '"k"': [1.5e300, -0, null] } };
    // Routing keys from other publishers are not checked by topicgate; they must still arrive intact.
    await publishRaw(gateway.exchange, 'weird"key\\.ü', JSON.stringify(body));
    const [message] = await c.messages.waitForCount(1);
    expect(message).toEqual({ id, key: 'weird"key\\.ü', body: JSON.parse(JSON.stringify(body)), seq: 1 });
  });

  it('drops a non-JSON body from a buggy publisher and keeps delivering the next messages', async ({ gateway, client: c }) => {
    const id = await c.mustSubscribe('buggy.#');
    await publishRaw(gateway.exchange, 'buggy.1', 'this is not json');
    await publishRaw(gateway.exchange, 'buggy.2', '[1, 2, 3]');
    await publishRaw(gateway.exchange, 'buggy.3', '{"truncated": ');
    await gateway.mq.produce('buggy.4', { fine: true });
    const [first] = await c.messages.waitForCount(1);
    expect(first).toEqual({ id, key: 'buggy.4', body: { fine: true }, seq: 1 });
  });
});

describe('one exclusive queue per subscription, on the broker', () => {
  it('exists while subscribed (exclusive, one consumer) and is gone when the unsubscribe ack arrives', async ({ gateway, client: c }) => {
    const id = await c.mustSubscribe('builds.#');
    expect(await listQueues(`${gateway.queuePrefix}${id}`)).toEqual([
      { name: `${gateway.queuePrefix}${id}`, exclusive: true, consumers: 1, messages: 0 },
    ]);
    expect(await c.unsubscribe(id)).toEqual({ ok: true });
    expect(await listQueues(`${gateway.queuePrefix}${id}`)).toEqual([]);
    await gateway.mq.produce('builds.9.finished', {});
    expect(await c.unsubscribe(id)).toEqual({ ok: false, error: { code: 'unknown_subscription', message: expect.stringContaining(id) } });
  });

  it('stops delivering after unsubscribe, while the socket\'s other subscriptions keep receiving', async ({ gateway, client: c }) => {
    const gone = await c.mustSubscribe('a.#');
    const kept = await c.mustSubscribe('a.#');
    await c.unsubscribe(gone);
    await gateway.mq.produce('a.1', {});
    await c.messages.waitFor((m) => m.id === kept);
    expect(c.deliveriesFor(gone)).toEqual([]);
  });
});
