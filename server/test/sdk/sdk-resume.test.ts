/**
 * The SDK's resume (docs/protocol.md §15) against a real gateway and
 * RabbitMQ: the network between the SDK and the gateway is cut (a TCP proxy
 * drops every connection and refuses new ones), messages are published while
 * the client is away, and once the network is back the SDK takes its
 * subscriptions up again — every message exactly once, in order, `seq`
 * continuing, no resync, no REST reload. Past the window, or when the queue
 * is gone, the view reloads with reason `expired`.
 */
import { createClient, type Client, type Message, type SubscriptionResyncReason } from '@topicgate/client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { newClaim } from '../../src/gateway/resume/claims.js';
import { deleteQueueAsOperator, eventually, listQueues, publishJson, publishRawMany, requireBroker } from '../support/broker.js';
import { startTestGateway, stopTestGateways, type TestGateway } from '../support/gateway.js';
import { TcpProxy } from '../support/tcp-proxy.js';

interface Item {
  id: number;
  version: number;
}

const proxies: TcpProxy[] = [];
const clients: Client[] = [];

beforeAll(requireBroker);
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const p of proxies.splice(0)) await p.close();
});
afterAll(stopTestGateways);

/** A gateway with a resume window, and an SDK client reaching it through a proxy the test can cut. */
async function setUp(resumeWindowSeconds: number): Promise<{ gateway: TestGateway; proxy: TcpProxy; client: Client }> {
  const gateway = await startTestGateway({ resumeWindowSeconds });
  const proxy = await TcpProxy.start({ host: '127.0.0.1', port: Number(new URL(gateway.url).port) });
  proxies.push(proxy);
  const client = createClient({
    url: `http://127.0.0.1:${proxy.port}`,
    transports: ['websocket'],
    // Back quickly once the network is: the test measures resume, not backoff.
    reconnectDelay: 50,
    reconnectDelayMax: 200,
  });
  clients.push(client);
  return { gateway, proxy, client };
}

/** A live collection over `pattern` that counts its loads and records its reload reasons. */
function watchedCollection(client: Client, pattern: string, load: () => Item[] = () => []) {
  const counts = { loads: 0, reloads: [] as string[] };
  const items = client.liveCollection<string, Item>({
    pattern,
    load: async () => {
      counts.loads++;
      return load();
    },
    apply: (_previous, message) => message.body as unknown as Item,
  });
  items.on('reload', (reason) => counts.reloads.push(reason));
  return { items, counts };
}

/** A pattern of its own, so the queue's name can be told from other runs' on the same broker. */
function uniquePattern(root: string): string {
  return `${root}.${Math.random().toString(36).slice(2, 10)}.#`;
}

/** The prefix of the resumable queue of `pattern` (claims are `topicgate.r.<subject>.<pattern>.<random>`; no token here). */
function queuePrefixOf(pattern: string): string {
  return newClaim(undefined, pattern).replace(/[^.]+$/, '');
}

/** Through rabbitmqctl: a passive declare would count as use and hold off the queue's expiry. */
async function queuesOf(pattern: string) {
  return listQueues(queuePrefixOf(pattern));
}

async function publishMany(gateway: TestGateway, key: string, from: number, to: number): Promise<void> {
  const messages = [];
  for (let n = from; n <= to; n++) messages.push({ key, content: JSON.stringify({ n }), properties: { contentType: 'application/json' } });
  await publishRawMany(gateway.exchange, messages);
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('the SDK resumes a subscription cut off by the network', () => {
  it('with every message exactly once, in order, seq continuing, and no resync — also when cut mid-stream past the broker\'s unconfirmed limit', async () => {
    const { gateway, proxy, client } = await setUp(30);
    const pattern = uniquePattern('logs');
    const key = pattern.replace('#', 'line');
    const got: Message[] = [];
    const resyncs: SubscriptionResyncReason[] = [];
    const subscribed: Array<{ resubscribed: boolean; resumed: boolean }> = [];
    const sub = client.subscribe(pattern, (m) => {
      got.push(m);
      // Mid-stream, from inside a batch: deliveries still in the socket and the broker's window, a receipt perhaps in flight.
      if (got.length === 150) proxy.cut();
    });
    sub.on('resync', ({ reason }) => resyncs.push(reason));
    sub.on('subscribed', ({ resubscribed, resumed }) => subscribed.push({ resubscribed, resumed }));
    await eventually(() => sub.state === 'subscribed', 'subscribed');

    // 300 at once: the broker sends at most ~99 unconfirmed, so this only completes if receipts flow while delivering.
    await publishMany(gateway, key, 1, 300);
    await eventually(() => got.length >= 150, '150 deliveries');
    await eventually(async () => (await queuesOf(pattern)).some((q) => q.consumers === 0), 'the gateway detached the queue');
    await publishMany(gateway, key, 301, 400);
    proxy.restore();

    await eventually(() => got.length >= 400, 'every message through 400');
    await publishMany(gateway, key, 401, 420);
    await eventually(() => got.length >= 420, 'every message through 420');

    expect(got.map((m) => (m.body as { n: number }).n)).toEqual(range(1, 420));
    expect(got.map((m) => m.seq)).toEqual(range(1, 420));
    expect(resyncs).toEqual([]);
    expect(subscribed[0]).toEqual({ resubscribed: false, resumed: false });
    expect(subscribed.slice(1).length).toBeGreaterThanOrEqual(1);
    expect(subscribed.slice(1).every((s) => s.resubscribed && s.resumed)).toBe(true);
    // Confirmed to the end, receipts flowing on the resumed connection as on the first.
    await eventually(() => sub._resume.settled === 420, 'the receipt for 420 acknowledged');
  });

  it('keeps a live collection without reloading it', async () => {
    const { gateway, proxy, client } = await setUp(30);
    const pattern = uniquePattern('items');
    const truth = new Map<number, Item>([[1, { id: 1, version: 1 }]]);
    const { items, counts } = watchedCollection(client, pattern, () => [...truth.values()].map((item) => ({ ...item })));
    const change = async (id: number) => {
      const next = { id, version: (truth.get(id)?.version ?? 0) + 1 };
      truth.set(id, next);
      await publishJson(gateway.exchange, pattern.replace('#', `${id}`), { ...next });
    };
    const converged = () => JSON.stringify([...items.items].sort((a, b) => a.id - b.id)) === JSON.stringify([...truth.values()].sort((a, b) => a.id - b.id));

    await eventually(() => items.loaded, 'the first load');
    for (let n = 0; n < 10; n++) await change(1 + (n % 3));
    await eventually(converged, 'converged before the cut');

    proxy.cut();
    await eventually(async () => (await queuesOf(pattern)).some((q) => q.consumers === 0), 'the gateway detached the queue');
    // Changes while away are announced only to the queue: without resume, only a reload would show them.
    for (let n = 0; n < 10; n++) await change(1 + (n % 4));
    proxy.restore();

    await eventually(converged, 'converged after the resume');
    expect(client.state).toBe('connected');
    expect(counts.loads).toBe(1);
    expect(counts.reloads).toEqual([]);
  });
});

describe('the SDK reloads when the subscription cannot be resumed', () => {
  it('expired: the network came back after the window, when the broker had deleted the queue', async () => {
    const { gateway, proxy, client } = await setUp(1);
    const pattern = uniquePattern('items');
    const { items, counts } = watchedCollection(client, pattern);
    await eventually(() => items.loaded, 'the first load');
    expect(await queuesOf(pattern)).toHaveLength(1);

    proxy.cut();
    await eventually(async () => (await queuesOf(pattern)).length === 0, 'the broker expired the queue', 20_000);
    proxy.restore();

    await eventually(() => counts.loads === 2, 'the reload');
    expect(counts.reloads).toEqual(['expired']);
    // The fresh subscription delivers.
    await publishJson(gateway.exchange, pattern.replace('#', '1'), { id: 1, version: 1 });
    await eventually(() => items.items.length === 1, 'a delivery on the fresh subscription');
  });

  it('expired: the gateway found the queue gone within the window (deleted by an operator)', async () => {
    const { proxy, client } = await setUp(30);
    const pattern = uniquePattern('items');
    const { items, counts } = watchedCollection(client, pattern);
    await eventually(() => items.loaded, 'the first load');

    proxy.cut();
    await eventually(async () => (await queuesOf(pattern)).some((q) => q.consumers === 0), 'the gateway detached the queue');
    const [queue] = await queuesOf(pattern);
    await deleteQueueAsOperator(queue!.name);
    proxy.restore();

    await eventually(() => counts.loads === 2, 'the reload');
    expect(counts.reloads).toEqual(['expired']);
  });
});
