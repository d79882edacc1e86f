/**
 * Resume (docs/protocol.md §15) on RabbitMQ: a client cut off mid-stream
 * reconnects — to the same gateway or another — and gets exactly the messages
 * it missed, or a reason to reload; and nothing lingers on the broker.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { closeConnections, eventually, listQueues, publishJson, requireBroker, withAdminChannel } from '../support/broker.js';
import { startTestGateway, stopTestGateways, type TestGateway } from '../support/gateway.js';
import { ResumingClient } from './resume-client.js';

const QUEUES = 'topicgate.r.';
const clients: ResumingClient[] = [];

async function client(gateway: TestGateway): Promise<ResumingClient> {
  const c = await ResumingClient.connect(gateway.url);
  clients.push(c);
  return c;
}

/** Publishes {n} for each n; a queue past its backlog bound refuses (nacks) some, which is what overflow tests want. */
async function publish(gateway: TestGateway, key: string, from: number, to: number, { refusals = false } = {}): Promise<void> {
  for (let n = from; n <= to; n++) {
    await publishJson(gateway.exchange, key, { n }).catch((err: unknown) => {
      if (!refusals) throw err;
    });
  }
}

/** Through rabbitmqctl: a passive declare would count as use and hold off x-expires. */
async function queueExists(name: string): Promise<boolean> {
  return (await listQueues(name)).some((q) => q.name === name);
}

const numbers = (c: ResumingClient, name: string) => c.subs.get(name)!.received.map((d) => (d.body as { n: number }).n);

beforeAll(requireBroker);
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
});
afterAll(stopTestGateways);

describe('a resumable subscription', () => {
  it('is granted a claim and the window, and its queue outlives a cut but not an intentional close', async () => {
    const gateway = await startTestGateway({ resumeWindowSeconds: 30 });
    const c = await client(gateway);
    const held = await c.subscribe('a', 'builds.*');
    expect(held.grant.window).toBe(30);
    expect(held.grant.claim.startsWith(QUEUES)).toBe(true);
    expect(await queueExists(held.grant.claim)).toBe(true);
    c.cut();
    await eventually(async () => (await listQueues(held.grant.claim)).some((q) => q.consumers === 0), 'the queue detached');
    expect(await queueExists(held.grant.claim)).toBe(true);

    const acks = await c.reconnect();
    expect(acks.get('a')).toMatchObject({ ok: true, resumed: true });
    c.client.close(); // intentional: deleted at once
    await eventually(async () => !(await queueExists(held.grant.claim)), 'the queue deleted after client.close()');
  });

  it('resumes on the same gateway with exactly the messages missed, seq continuing, no resync', async () => {
    const gateway = await startTestGateway({ resumeWindowSeconds: 30 });
    const c = await client(gateway);
    await c.subscribe('a', 'logs.#');
    await publish(gateway, 'logs.1', 1, 20);
    await eventually(() => c.subs.get('a')!.seq === 20, '20 deliveries');
    await c.confirm(); // settled at 20
    await publish(gateway, 'logs.1', 21, 30);
    await eventually(() => c.subs.get('a')!.seq === 30, '30 deliveries');
    c.cut(); // 21-30 received but never confirmed: the broker redelivers them, the gateway must skip them
    await eventually(async () => (await listQueues(c.subs.get('a')!.grant.claim)).some((q) => q.consumers === 0), 'the queue detached');
    await publish(gateway, 'logs.1', 31, 50);

    const resyncs: unknown[] = [];
    const acks = await c.reconnect();
    c.client.socket.on('resync', (r) => resyncs.push(r));
    expect(acks.get('a')).toMatchObject({ ok: true, resumed: true });
    await publish(gateway, 'logs.1', 51, 60);
    await eventually(() => c.subs.get('a')!.seq === 60, 'every message through 60');
    expect(numbers(c, 'a')).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
    expect(resyncs).toEqual([]);
  });

  it('resumes on another gateway while the first still holds the queue (a silent cut): the first lets go', async () => {
    const first = await startTestGateway({ resumeWindowSeconds: 30 });
    const second = await startTestGateway({ resumeWindowSeconds: 30, exchange: first.exchange });
    const c = await client(first);
    await c.subscribe('a', 'logs.#');
    await publish(first, 'logs.2', 1, 10);
    await eventually(() => c.subs.get('a')!.seq === 10, '10 deliveries');
    // No cut at all: the old socket stays connected, as one whose network died silently would until pings time out.
    const old = c.client;
    const acks = await c.reconnect(second.url, { leaveOldOpen: true });
    expect(acks.get('a')).toEqual({ ok: true, id: expect.any(String), resume: expect.anything(), resumed: true, settled: 0 });
    await eventually(() => old.socket.disconnected, 'the first gateway dropped the superseded socket');
    await publish(first, 'logs.2', 11, 20);
    await eventually(() => c.subs.get('a')!.seq === 20, 'every message through 20');
    expect(numbers(c, 'a')).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  });

  it('resumes exactly when a receipt was in flight at the cut', async () => {
    const gateway = await startTestGateway({ resumeWindowSeconds: 30 });
    const c = await client(gateway);
    await c.subscribe('a', 'logs.#');
    await publish(gateway, 'logs.3', 1, 10);
    await eventually(() => c.subs.get('a')!.seq === 10, '10 deliveries');
    await c.confirm();
    await publish(gateway, 'logs.3', 11, 25);
    await eventually(() => c.subs.get('a')!.seq === 25, '25 deliveries');
    c.confirmWithoutWaiting(); // may or may not reach the broker before the cut
    c.cut();
    await eventually(async () => (await listQueues(c.subs.get('a')!.grant.claim)).some((q) => q.consumers === 0), 'the queue detached');
    await publish(gateway, 'logs.3', 26, 30);
    const acks = await c.reconnect();
    expect(acks.get('a')).toMatchObject({ ok: true, resumed: true });
    await eventually(() => c.subs.get('a')!.seq === 30, 'every message through 30');
    expect(numbers(c, 'a')).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
  });
});

describe('on the embedded broker (one gateway, `topicgate demo`)', () => {
  it('resumes after a cut with exactly the messages missed', async () => {
    const gateway = await startTestGateway({ amqpUrls: [], resumeWindowSeconds: 30 });
    const c = await client(gateway);
    await c.subscribe('a', 'logs.#');
    c.autoConfirm();
    const publishEmbedded = async (from: number, to: number) => {
      for (let n = from; n <= to; n++) await gateway.mq.produce('logs.9', { n });
    };
    await publishEmbedded(1, 150);
    await eventually(() => c.subs.get('a')!.seq === 150, '150 deliveries');
    c.cut();
    await publishEmbedded(151, 200);
    const acks = await c.reconnect();
    expect(acks.get('a')).toMatchObject({ ok: true, resumed: true });
    await publishEmbedded(201, 210);
    await eventually(() => c.subs.get('a')!.seq === 210, 'every message through 210');
    expect(numbers(c, 'a')).toEqual(Array.from({ length: 210 }, (_, i) => i + 1));
    expect(c.resyncs).toEqual([]);
  });
});

describe('a resume that cannot be exact says why', () => {
  it('expired: the window passed and the broker deleted the queue', async () => {
    const gateway = await startTestGateway({ resumeWindowSeconds: 1 });
    const c = await client(gateway);
    const held = await c.subscribe('a', 'logs.#');
    c.cut();
    await eventually(async () => !(await queueExists(held.grant.claim)), 'the broker expired the queue', 20_000);
    const acks = await c.reconnect();
    expect(acks.get('a')).toMatchObject({ ok: true, resumed: false, reason: 'expired' });
    // The fresh subscription works.
    await publish(gateway, 'logs.4', 1, 1);
    await eventually(() => c.subs.get('a')!.seq === 1, 'a delivery on the fresh subscription');
  });

  it('overflow: more waited than the backlog bound', async () => {
    const gateway = await startTestGateway({ resumeWindowSeconds: 30, resumeBacklog: 5 });
    const c = await client(gateway);
    await c.subscribe('a', 'logs.#');
    c.cut();
    await eventually(async () => (await listQueues(c.subs.get('a')!.grant.claim)).some((q) => q.consumers === 0), 'the queue detached');
    await publish(gateway, 'logs.5', 1, 10, { refusals: true });
    const acks = await c.reconnect();
    expect(acks.get('a')).toMatchObject({ ok: true, resumed: false, reason: 'overflow' });
  });

  it('reconnected: after the gateway loses its broker connection the client gets resync with a new claim, and the old one is void', async () => {
    const gateway = await startTestGateway({ resumeWindowSeconds: 30 });
    const c = await client(gateway);
    const { claim } = (await c.subscribe('a', 'logs.#')).grant;
    await publish(gateway, 'logs.7', 1, 2);
    await eventually(() => c.subs.get('a')!.seq === 2, 'deliveries on the first queue');
    await closeConnections(gateway.connectionName, 'test: force a reconnect');
    await eventually(() => c.resyncs.length === 1, 'the resync');
    const [notice] = c.resyncs as Array<{ reason: string; resume?: { claim: string } }>;
    expect(notice).toMatchObject({ reason: 'reconnected', resume: { claim: expect.stringMatching(/^topicgate\.r\./), window: 30 } });
    expect(notice!.resume!.claim).not.toBe(claim);
    expect(await queueExists(claim)).toBe(false);
    // A cut before anything reached the new queue, and one after: both resume it exactly.
    c.cut();
    await publish(gateway, 'logs.7', 3, 4);
    expect((await c.reconnect()).get('a')).toMatchObject({ ok: true, resumed: true });
    await eventually(() => c.subs.get('a')!.seq === 4, 'every message through 4');
    c.cut();
    await publish(gateway, 'logs.7', 5, 6);
    expect((await c.reconnect()).get('a')).toMatchObject({ ok: true, resumed: true });
    await eventually(() => c.subs.get('a')!.seq === 6, 'every message through 6');
    expect(numbers(c, 'a')).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('lost: the broker no longer holds the marker (what a node restart does to non-persistent messages)', async () => {
    const gateway = await startTestGateway({ resumeWindowSeconds: 30 });
    const c = await client(gateway);
    const { claim } = (await c.subscribe('a', 'logs.#')).grant;
    c.cut();
    await eventually(async () => (await listQueues(claim)).some((q) => q.consumers === 0), 'the queue detached');
    await withAdminChannel((ch) => ch.purgeQueue(claim));
    await publish(gateway, 'logs.6', 1, 3);
    const acks = await c.reconnect();
    expect(acks.get('a')).toMatchObject({ ok: true, resumed: false, reason: 'lost' });
    expect(await queueExists(claim)).toBe(false);
  });
});

describe('nothing lingers', () => {
  it('unsubscribe deletes a resumable queue at once', async () => {
    const gateway = await startTestGateway({ resumeWindowSeconds: 30 });
    const c = await client(gateway);
    const held = await c.subscribe('a', 'logs.#');
    expect(await c.client.unsubscribe(held.id)).toEqual({ ok: true });
    expect(await queueExists(held.grant.claim)).toBe(false);
  });

  it('with the window off, the ack grants nothing and the queue is exclusive', async () => {
    const gateway = await startTestGateway();
    const c = await client(gateway);
    const ack = await c.client.socket.timeout(10_000).emitWithAck('subscribe', { pattern: 'logs.#', resumable: true });
    expect(ack).toEqual({ ok: true, id: expect.any(String) });
    expect((await listQueues(gateway.queuePrefix)).map((q) => q.exclusive)).toEqual([true]);
  });
});
