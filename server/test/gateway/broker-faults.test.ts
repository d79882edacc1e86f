/**
 * Broker outages, caused for real: a TCP proxy between gateway and RabbitMQ
 * that the test cuts or freezes, `rabbitmqctl close_connection`, queues
 * deleted from outside, and broker-side errors injected on one subscription.
 */
import { addBrokerUser, channelCount, closeConnections, deleteBrokerUser, deleteQueueAsOperator, eventually, listQueues, requireBroker, testAmqpUrlAs, uniqueName, withAdminChannel } from '../support/broker.js';
import { startTestGateway, stopTestGateways, type TestGateway } from '../support/gateway.js';
import { describe, expect, test as it } from '../support/kit.js';
import { TcpProxy } from '../support/tcp-proxy.js';
import type { AmqpConnector } from '../../src/mq/amqp.js';

const proxies: TcpProxy[] = [];

async function gatewayBehindProxy(heartbeat = 15): Promise<{ gateway: TestGateway; proxy: TcpProxy }> {
  const proxy = await TcpProxy.start();
  proxies.push(proxy);
  const gateway = await startTestGateway({ amqpUrls: [proxy.amqpUrl()], amqpHeartbeatSeconds: heartbeat });
  return { gateway, proxy };
}

async function readyStatus(gateway: TestGateway): Promise<number> {
  return (await fetch(`${gateway.url}/readyz`)).status;
}

it.beforeAll(requireBroker);
it.afterEach(async () => {
  await stopTestGateways();
  for (const proxy of proxies.splice(0)) await proxy.close();
});

describe('when the broker connection is lost', () => {
  it('stays up, turns unready, answers subscribes with unavailable, then reconnects, re-declares the same queue and sends resync', async ({ connect }) => {
    const { gateway, proxy } = await gatewayBehindProxy();
    const c = await connect(gateway.url);
    const id = await c.mustSubscribe('builds.#');
    await gateway.mq.produce('builds.1.finished', { n: 1 });
    await c.messages.waitForCount(1);
    expect(await readyStatus(gateway)).toBe(200);

    proxy.cut();
    await eventually(async () => (await readyStatus(gateway)) === 503, '/readyz turns 503');
    expect(await c.subscribe('logs.#')).toEqual({ ok: false, error: { code: 'unavailable', message: expect.stringMatching(/broker connection is down/) } });
    expect(await listQueues(gateway.queuePrefix)).toEqual([]); // the broker dropped the exclusive queue with the connection

    proxy.restore();
    expect(await c.resyncs.waitFor((r) => r.id === id)).toEqual({ id, reason: 'reconnected' });
    expect(await readyStatus(gateway)).toBe(200);
    expect(await listQueues(`${gateway.queuePrefix}${id}`)).toEqual([
      { name: `${gateway.queuePrefix}${id}`, exclusive: true, consumers: 1, messages: 0 },
    ]);
    await gateway.mq.produce('builds.2.finished', { n: 2 });
    const second = await c.messages.waitFor((m) => m.body.n === 2);
    expect(second).toEqual({ id, key: 'builds.2.finished', body: { n: 2 }, seq: 2 });
  });

  it('recovers the same way when an operator closes its connection with rabbitmqctl', async ({ connect }) => {
    const gateway = await startTestGateway();
    const c = await connect(gateway.url);
    const a = await c.mustSubscribe('a.#');
    const b = await c.mustSubscribe('b.#');
    await closeConnections(gateway.connectionName, 'test: operator closed the connection');
    const resyncs = await c.resyncs.waitForCount(2);
    expect(resyncs.map((r) => r.id).sort()).toEqual([a, b].sort());
    expect(resyncs.every((r) => r.reason === 'reconnected')).toBe(true);
    await gateway.mq.produce('b.1', {});
    expect((await c.messages.waitFor((m) => m.id === b)).seq).toBe(1);
  });

  it('starts unready when the broker is unreachable and becomes ready once it is there', async ({ connect }) => {
    const proxy = await TcpProxy.start();
    proxies.push(proxy);
    proxy.cut();
    const gateway = await startTestGateway({ amqpUrls: [proxy.amqpUrl()] });
    expect(await readyStatus(gateway)).toBe(503);
    const c = await connect(gateway.url);
    expect(await c.subscribe('early.#')).toMatchObject({ ok: false, error: { code: 'unavailable' } });
    proxy.restore();
    await eventually(async () => (await readyStatus(gateway)) === 200, '/readyz turns 200 once connected');
    const id = await c.mustSubscribe('early.#');
    await gateway.mq.produce('early.1', {});
    await c.messages.waitFor((m) => m.id === id);
  });

  it('tries each URL of a list in turn', async ({ connect }) => {
    const dead = await TcpProxy.start();
    proxies.push(dead);
    dead.cut();
    const live = await TcpProxy.start();
    proxies.push(live);
    const gateway = await startTestGateway({ amqpUrls: [dead.amqpUrl(), live.amqpUrl()] });
    const c = await connect(gateway.url);
    const id = await c.mustSubscribe('x.#');
    // Now the live node dies and the dead one comes back.
    dead.restore();
    live.cut();
    expect(await c.resyncs.waitFor((r) => r.id === id)).toEqual({ id, reason: 'reconnected' });
    await gateway.mq.produce('x.1', {});
    await c.messages.waitFor((m) => m.id === id);
  });

  it('detects a silent broker within two heartbeat intervals', async ({ connect }) => {
    const heartbeat = 1;
    const { gateway, proxy } = await gatewayBehindProxy(heartbeat);
    const c = await connect(gateway.url);
    const id = await c.mustSubscribe('quiet.#');
    proxy.freeze();
    const frozenAt = Date.now();
    await eventually(async () => (await readyStatus(gateway)) === 503, '/readyz turns 503 on heartbeat timeout', 10_000);
    // Two intervals, plus one for amqplib's check granularity.
    expect(Date.now() - frozenAt).toBeLessThanOrEqual(3 * heartbeat * 1000 + 500);
    proxy.restore();
    expect(await c.resyncs.waitFor((r) => r.id === id)).toEqual({ id, reason: 'reconnected' });
    await gateway.mq.produce('quiet.1', {});
    await c.messages.waitFor((m) => m.id === id);
  });
});

describe('a broker error on one subscription ends only that subscription', () => {
  it('a queue deleted from outside gives unsubscribed queue_deleted; other subscriptions keep receiving and no channel leaks', async ({ connect }) => {
    const gateway = await startTestGateway();
    const c = await connect(gateway.url);
    const doomed = await c.mustSubscribe('doomed.#');
    const kept = await c.mustSubscribe('kept.#');
    const other = await connect(gateway.url);
    const otherId = await other.mustSubscribe('kept.#');
    const channelsBefore = await channelCount(gateway.connectionName);

    await deleteQueueAsOperator(`${gateway.queuePrefix}${doomed}`);
    expect(await c.unsubscribed.waitFor((n) => n.id === doomed)).toEqual({ id: doomed, reason: 'queue_deleted' });
    await gateway.mq.produce('kept.1', {});
    await c.messages.waitFor((m) => m.id === kept);
    await other.messages.waitFor((m) => m.id === otherId);
    // Consumers share channels: the others' channel stays, and nothing new is left open.
    expect(await channelCount(gateway.connectionName)).toBe(channelsBefore);
    expect(await c.unsubscribe(doomed)).toMatchObject({ ok: false, error: { code: 'unknown_subscription' } });
  });

  it('a subscribe the broker refuses (RESOURCE_LOCKED) fails alone, leaving no channel and no queue', async ({ connect }) => {
    const gateway = await startTestGateway();
    const c = await connect(gateway.url);
    const first = await c.mustSubscribe('lock.#');
    const channelsBefore = await channelCount(gateway.connectionName);
    // White-box: subscription ids are a base-36 counter, so the next queue name is known.
    // Another connection takes it, so the gateway's exclusive declare is refused.
    const next = `s${(parseInt(first.slice(1), 36) + 1).toString(36)}`;
    await withAdminChannel(async (ch) => {
      await ch.assertQueue(`${gateway.queuePrefix}${next}`, { exclusive: true });
      const ack = await c.subscribe('lock.other');
      expect(ack).toEqual({ ok: false, error: { code: 'unavailable', message: expect.stringMatching(/broker refused the subscription/) } });
      // The broker's own words (queue, vhost, user names) stay in the gateway's log.
      expect(JSON.stringify(ack)).not.toMatch(/RESOURCE_LOCKED|vhost|topicgate\./);
    });
    await eventually(async () => (await channelCount(gateway.connectionName)) === channelsBefore, 'the refused subscription\'s channel is gone');
    await gateway.mq.produce('lock.1', {});
    await c.messages.waitFor((m) => m.id === first);
    expect((await listQueues(gateway.queuePrefix)).map((q) => q.name)).toEqual([`${gateway.queuePrefix}${first}`]);
  });

  it('an exchange deleted from outside is declared again on the next subscribe', async ({ connect }) => {
    const gateway = await startTestGateway();
    const c = await connect(gateway.url);
    await withAdminChannel((ch) => ch.deleteExchange(gateway.exchange));
    const id = await c.mustSubscribe('again.#');
    await gateway.mq.produce('again.1', {});
    await c.messages.waitFor((m) => m.id === id);
  });

  it('a consumer channel killed by a broker error sends resync interrupted to exactly its subscriptions, whose seq then continues', async ({ connect }) => {
    const gateway = await startTestGateway();
    const a = await connect(gateway.url);
    const b = await connect(gateway.url);
    // Consumers share channels 100 at a time: a's 100 fill the first, b's one opens a second.
    const aIds: string[] = [];
    for (let i = 0; i < 100; i++) aIds.push(await a.mustSubscribe('chan.#'));
    const bId = await b.mustSubscribe('chan.#');
    const pools = (gateway.mq as AmqpConnector).channels!.consumerChannels();
    expect(pools.map((p) => p.members.size)).toEqual([100, 1]);

    await gateway.mq.produce('chan.1', { n: 1 });
    await b.messages.waitFor((m) => m.body.n === 1);
    await a.messages.waitForCount(100);
    // A broker error on the first channel only: an acknowledgement for a delivery it never made.
    pools[0]!.channel.ack({ fields: { deliveryTag: 999_999 } } as never);
    await a.resyncs.waitForCount(100);
    expect(new Set(a.resyncs.items.map((r) => r.id))).toEqual(new Set(aIds));
    expect(a.resyncs.items.every((r) => r.reason === 'interrupted')).toBe(true);

    await gateway.mq.produce('chan.2', { n: 2 });
    await a.messages.waitForCount(200);
    await b.messages.waitFor((m) => m.body.n === 2);
    expect(b.resyncs.items).toEqual([]);
    for (const id of [...aIds, bId]) {
      const client = id === bId ? b : a;
      expect(client.deliveriesFor(id).map((d) => [d.body.n, d.seq])).toEqual([[1, 1], [2, 2]]);
    }
    expect(await readyStatus(gateway)).toBe(200);
    expect((await listQueues(gateway.queuePrefix)).length).toBe(101);
  });

  it('a subscribe the broker will always refuse (no configure permission on the queue) is answered refused, not unavailable, and leaves no queue', async ({ connect }) => {
    const user = uniqueName('tg-noconf');
    const password = uniqueName('pw');
    // May declare the gateway's exchange, not its queues.
    await addBrokerUser(user, password, { configure: '^topicgate-test-', write: '.*', read: '.*' });
    try {
      const gateway = await startTestGateway({ amqpUrls: [testAmqpUrlAs(user, password)] });
      const c = await connect(gateway.url);
      const ack = await c.subscribe('refused.#');
      expect(ack).toEqual({ ok: false, error: { code: 'refused', message: expect.stringMatching(/will refuse it again; an operator must act/) } });
      expect(JSON.stringify(ack)).not.toMatch(/ACCESS_REFUSED|vhost|topicgate\./);
      expect(await listQueues(gateway.queuePrefix)).toEqual([]);
    } finally {
      await stopTestGateways();
      await deleteBrokerUser(user);
    }
  });
});
