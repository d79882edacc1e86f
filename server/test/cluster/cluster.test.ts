/**
 * topicgate on a RabbitMQ cluster behind a load balancer, with real parts
 * only: scripts/cluster.sh starts three RabbitMQ nodes (tgc1..3@localhost,
 * joined with join_cluster), three `topicgate serve` processes whose
 * TOPICGATE_AMQP_URL lists the nodes in different orders (gwN starts on node
 * N), and HAProxy with cookie stickiness in front (docs/cluster.md). One rig
 * serves every scenario, in order; the last one stops it and checks that
 * nothing is left running.
 *
 * The clients are the SDK in Node, through HAProxy: websocket-only,
 * long-polling-only (needs the sticky cookie on every request) and
 * polling-then-upgrade, some with resumable subscriptions (the gateways run
 * with a resume window). Each client keeps a live collection of the
 * application's items equal to a REST API, holds a raw subscription to
 * every item change, and a marker subscription of its own whose queue tells
 * the test, through rabbitmqctl, which gateway and node serve the client.
 */
import { createClient, type Client, type LiveCollection, type Message, type Subscription } from '@topicgate/client';
import type { SubscribeAck } from '@topicgate/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintToken } from '../../src/auth/token-verifier.js';
import { DEFERRED_DELETE_RETRY_MS } from '../../src/mq/amqp-deferred-deletes.js';
import { eventually } from '../support/eventually.js';
import { ResumingClient } from '../resume/resume-client.js';
import {
  ChangeStream,
  channelsPerNode,
  cluster,
  clusterBindings,
  clusterConnections,
  clusterQueues,
  consumerConnections,
  gatewayUrl,
  HAPROXY_URL,
  ItemStore,
  machineNodeCluster,
  NodePublisher,
  nodeName,
  NODES,
  rigProcesses,
  rigSecret,
  runningNodes,
  type ClusterQueue,
  type Item,
  type NodeIndex,
  type Published,
} from './rig.js';

/**
 * How long after a node's SIGKILL every subscription whose queue lived there
 * must have had its `resync`. The gateway learns of the death at once (the
 * kernel resets its TCP connection: same host, no heartbeat needed; across
 * hosts a dead machine is noticed by heartbeats, 2 × TOPICGATE_AMQP_HEARTBEAT),
 * reconnects after its first backoff delay (100–200 ms) to the next node of
 * its list, declares the exchange and re-declares each queue. Measured here:
 * well under 2 s; the bound leaves room for a 2-core machine busy with three
 * Erlang VMs and the test itself.
 */
const RESYNC_BOUND_MS = 10_000;
/** A gateway retries deleting a queue whose node was down every DEFERRED_DELETE_RETRY_MS; the rest is this box's load. */
const DEFERRED_DELETE_BOUND_MS = DEFERRED_DELETE_RETRY_MS + 10_000;

/** The gateways' settings for the whole rig: a resume window, so that some clients resume. */
const RESUME_WINDOW_S = 30;
const GATEWAY_ENV = { TOPICGATE_RESUME_WINDOW: String(RESUME_WINDOW_S), TOPICGATE_LOG_LEVEL: 'info' };

type Transport = 'websocket' | 'polling' | 'upgrade';

interface Watcher {
  name: string;
  transport: Transport;
  resumable: boolean;
  client: Client;
  items: LiveCollection<Item, Message>;
  raw: Subscription;
  marker: Subscription;
  /** Bodies of the raw subscription, in arrival order. */
  received: Array<{ id: number; version: number; at: number }>;
  resyncs: Array<{ reason: string; at: number }>;
  reloads: Array<{ reason: string; at: number }>;
  resumed: number;
  /** Acknowledgements of the raw subscription after the first: when, and whether it was a resume. */
  resubscribed: Array<{ at: number; resumed: boolean }>;
  disconnects: Array<{ reason: string; at: number }>;
}

const store = new ItemStore(12);
const watchers: Watcher[] = [];
const publishers = new Map<NodeIndex, NodePublisher>();
let secret = '';
/** Channels of each gateway connection (by name) before any client came: what must be left at the end. */
let baselineChannels = new Map<string, number>();

function watch(name: string, transport: Transport, resumable: boolean): Watcher {
  const client = createClient({
    url: HAPROXY_URL,
    getToken: async () => mintToken({ secret, sub: name, topics: ['items.#', 'where.#'], ttlSeconds: 3600 }),
    transports: transport === 'websocket' ? ['websocket'] : transport === 'polling' ? ['polling'] : ['polling', 'websocket'],
    // Node's socket.io-client keeps cookies (HAProxy's tg_gw) only with withCredentials.
    socketOptions: { withCredentials: true },
    resume: resumable,
    reconnectDelay: 200,
    reconnectDelayMax: 1_000,
    resubscribeDelay: 200,
    resubscribeDelayMax: 1_000,
  });
  const w: Watcher = {
    name,
    transport,
    resumable,
    client,
    items: client.liveCollection<string, Item>({
      pattern: 'items.*',
      load: async (signal) => (await fetch(`${store.url}/items`, { signal })).json() as Promise<Item[]>,
      apply: (_previous, m) => m.body as unknown as Item,
      retryDelay: 200,
      retryDelayMax: 1_000,
    }),
    raw: client.subscribe('items.#', (m) => {
      const body = m.body as unknown as Item;
      w.received.push({ id: body.id, version: body.version, at: Date.now() });
    }),
    marker: client.subscribe(`where.${name}`, () => undefined),
    received: [],
    resyncs: [],
    reloads: [],
    resumed: 0,
    resubscribed: [],
    disconnects: [],
  };
  w.raw.on('resync', ({ reason }) => w.resyncs.push({ reason, at: Date.now() }));
  w.raw.on('subscribed', ({ resumed, resubscribed }) => {
    w.resumed += resumed ? 1 : 0;
    if (resubscribed) w.resubscribed.push({ at: Date.now(), resumed });
  });
  w.items.on('reload', (reason) => w.reloads.push({ reason, at: Date.now() }));
  client.on('disconnected', ({ reason }) => w.disconnects.push({ reason, at: Date.now() }));
  watchers.push(w);
  return w;
}

const byId = (a: Item, b: Item) => a.id - b.id;
const converged = (w: Watcher) => w.items.status === 'live' && JSON.stringify([...w.items.items].sort(byId)) === JSON.stringify(store.snapshot());
const allSubscribed = () => watchers.every((w) => w.raw.state === 'subscribed' && w.marker.state === 'subscribed' && w.items.status === 'live');

async function everyViewEqualsRest(what: string): Promise<void> {
  try {
    await eventually(() => watchers.every(converged), `${what}: every live view equal to GET /items`, { timeoutMs: 30_000, intervalMs: 100 });
  } catch (err) {
    throw new Error(`${(err as Error).message} (still different: ${watchers.filter((w) => !converged(w)).map((w) => `${w.name} ${w.items.status}`).join(', ')})`);
  }
}

/** Where each client is served: the gateway connection consuming its marker queue, and the node of that queue. */
async function placement(): Promise<Map<string, { gateway: string; node: string; queue: ClusterQueue }>> {
  const via = await anyRunningNode();
  const [queues, bindings, consumers] = await Promise.all([clusterQueues(via), clusterBindings(via), consumerConnections(via)]);
  const out = new Map<string, { gateway: string; node: string; queue: ClusterQueue }>();
  for (const w of watchers) {
    const queue = queues.find((q) => (bindings.get(q.name) ?? []).includes(`where.${w.name}`));
    if (!queue) continue;
    out.set(w.name, { gateway: consumers.get(queue.name) ?? '?', node: queue.node, queue });
  }
  return out;
}

/** The node killed by the current drill, if any: rabbitmqctl asks one of the others. */
let down: NodeIndex | null = null;
async function anyRunningNode(): Promise<NodeIndex> {
  return NODES.find((n) => n !== down)!;
}

/**
 * Each watcher got each of `messages`, exactly once unless the publisher had
 * to publish it again after a nack (then at most once per publish), and each
 * item's versions in order.
 */
function expectEveryMessage(w: Watcher, messages: readonly Published[]): void {
  const copies = new Map<string, number>();
  for (const r of w.received) copies.set(`${r.id}:${r.version}`, (copies.get(`${r.id}:${r.version}`) ?? 0) + 1);
  expect(messages.filter((m) => !copies.has(`${m.id}:${m.version}`)).map((m) => `${m.key} v${m.version}`), `${w.name}: missed`).toEqual([]);
  expect(messages.filter((m) => copies.get(`${m.id}:${m.version}`)! > m.attempts).map((m) => `${m.key} v${m.version}`), `${w.name}: duplicated`).toEqual([]);
  const last = new Map<number, number>();
  for (const r of w.received) {
    expect(r.version, `${w.name}: item ${r.id} out of order`).toBeGreaterThanOrEqual(last.get(r.id) ?? 0);
    last.set(r.id, r.version);
  }
}

const hasAll = (w: Watcher, messages: readonly Published[]) => {
  const got = new Set(w.received.map((r) => `${r.id}:${r.version}`));
  return messages.every((m) => got.has(`${m.id}:${m.version}`));
};

/** Channels per gateway connection ("topicgate gw1", "topicgate gw1 control", …). */
async function gatewayChannels(): Promise<Map<string, number>> {
  const connections = (await clusterConnections(await anyRunningNode())).filter((c) => c.name.startsWith('topicgate gw'));
  return new Map(connections.map((c) => [c.name, c.channels]));
}

const countsSince = (list: Map<string, number>, w: Watcher, what: 'resyncs' | 'reloads') => w[what].length - list.get(w.name)!;

/** The cluster's queues that serve clients (not the gateways' control queues). */
const clientQueues = (queues: ClusterQueue[]) => queues.filter((q) => !q.name.startsWith('topicgate.control.'));

beforeAll(async () => {
  // A rig left by an interrupted run of this file is stopped first (its own directory only).
  await cluster(['stop']);
  await cluster(['start'], GATEWAY_ENV);
  secret = rigSecret();
  await store.listen();
  baselineChannels = await gatewayChannels();
  for (const n of NODES) publishers.set(n, await NodePublisher.open(n));
}, 180_000);

afterAll(async () => {
  for (const w of watchers) w.client.close();
  for (const p of publishers.values()) await p.close();
  await store.close();
  await cluster(['stop']);
}, 120_000);

describe('topicgate on a three-node RabbitMQ cluster behind HAProxy', () => {
  it('spreads clients over all three gateways and delivers every message to every subscription, whichever node holds its queue and whichever node the publisher uses', async () => {
    expect(await runningNodes(1)).toEqual(NODES.map(nodeName));
    // gwN talks to node N first: the three URL lists start on different nodes.
    const connections = await clusterConnections(1);
    for (const n of NODES) expect(connections.filter((c) => c.name.startsWith(`topicgate gw${n}`)).map((c) => c.node)).toEqual([nodeName(n), nodeName(n)]);

    const transports: Transport[] = ['websocket', 'polling', 'upgrade'];
    // In blocks of one transport: round robin then spreads each kind (interleaved, kind and gateway could go in lockstep).
    for (let i = 0; i < 12; i++) watch(`c${i}`, transports[Math.floor(i / 4)]!, false);
    for (let i = 0; i < 6; i++) watch(`r${i}`, transports[Math.floor(i / 2)]!, true);
    await eventually(allSubscribed, 'every client subscribed and loaded', { timeoutMs: 30_000 });

    const placed = await placement();
    expect(placed.size).toBe(watchers.length);
    const gateways = new Set([...placed.values()].map((p) => p.gateway));
    expect([...gateways].sort()).toEqual(['topicgate gw1', 'topicgate gw2', 'topicgate gw3']);
    // Each transport kind, polling-only included, lands on more than one gateway (round robin, not by source address).
    for (const t of transports) expect(new Set(watchers.filter((w) => w.transport === t).map((w) => placed.get(w.name)!.gateway)).size).toBeGreaterThan(1);
    // A gateway's queues live on the node of its connection.
    for (const p of placed.values()) expect(p.node).toBe(`tgc${p.gateway.slice(-1)}@localhost`);

    const stream = new ChangeStream(store, [publishers.get(1)!, publishers.get(2)!, publishers.get(3)!]);
    const messages = await stream.burst(90);
    expect(stream.nacks).toBe(0);
    expect(new Set(messages.map((m) => m.node))).toEqual(new Set(NODES));
    await eventually(() => watchers.every((w) => hasAll(w, messages)), 'every client received every message', { timeoutMs: 20_000 });
    for (const w of watchers) expectEveryMessage(w, messages);
    await everyViewEqualsRest('after publishing on all three nodes');
    // Sticky sessions held: no client was thrown off its gateway, no subscription resynced.
    for (const w of watchers) {
      expect(w.disconnects, `${w.name} (${w.transport})`).toEqual([]);
      expect(w.resyncs, w.name).toEqual([]);
      expect(w.reloads, w.name).toEqual([]);
    }
  }, 90_000);

  it('a RabbitMQ node killed mid-stream: its gateway moves to another node and resyncs exactly the subscriptions whose queues lived there, within the bound; the others keep flowing; views converge; the node rejoins and nothing is left behind', async () => {
    const before = await placement();
    const affected = watchers.filter((w) => before.get(w.name)!.node === nodeName(1));
    const unaffected = watchers.filter((w) => before.get(w.name)!.node !== nodeName(1));
    expect(affected.length).toBeGreaterThan(0);
    expect(unaffected.length).toBeGreaterThan(0);
    const resyncsBefore = new Map(watchers.map((w) => [w.name, w.resyncs.length]));
    const reloadsBefore = new Map(watchers.map((w) => [w.name, w.reloads.length]));

    // Publishers on the surviving nodes; the stream runs through the kill.
    const stream = new ChangeStream(store, [publishers.get(2)!, publishers.get(3)!]);
    await publishers.get(1)!.close();
    publishers.delete(1);
    stream.start();
    await eventually(() => stream.published.length >= 30, '30 changes published before the kill');

    const killedAt = Date.now();
    down = 1;
    await cluster(['kill-node', '1']);
    const resynced = (w: Watcher) => w.resyncs.slice(resyncsBefore.get(w.name)).some((r) => r.at >= killedAt);
    await eventually(() => affected.every(resynced), 'every subscription on the killed node resynced', { timeoutMs: RESYNC_BOUND_MS, intervalMs: 20 });
    const latencies = affected.map((w) => w.resyncs.find((r) => r.at >= killedAt)!.at - killedAt);
    console.info(`node kill: ${affected.length} of ${watchers.length} clients (${affected.filter((w) => w.resumable).length} resumable) resynced after ${Math.min(...latencies)}–${Math.max(...latencies)} ms (bound ${RESYNC_BOUND_MS} ms)`);
    for (const w of affected) expect(w.resyncs.slice(resyncsBefore.get(w.name)).map((r) => r.reason), w.name).toEqual(['reconnected']);

    // Keep publishing past the recovery, then stop.
    const after = stream.published.length;
    await eventually(() => stream.published.length >= after + 30, '30 more changes after the recovery');
    await stream.stop();
    console.info(`node kill: ${stream.published.length} changes published through nodes 2 and 3, ${stream.nacks} nacked by the broker and published again`);

    // Unaffected: not a resync, not a reload, not one message missed.
    await eventually(() => unaffected.every((w) => hasAll(w, stream.published)), 'unaffected clients received every message', { timeoutMs: 20_000 });
    for (const w of unaffected) {
      expect(w.resyncs.length, `${w.name} resynced`).toBe(resyncsBefore.get(w.name));
      expect(w.reloads.length, `${w.name} reloaded`).toBe(reloadsBefore.get(w.name));
      expectEveryMessage(w, stream.published);
    }
    // Affected: every message sent after its resync arrived (and it reloaded for the rest). Sent, not confirmed: a
    // message routed before the new queue was bound can be confirmed after the resync, late behind the dead node.
    for (const w of affected) {
      const resyncAt = w.resyncs.find((r) => r.at >= killedAt)!.at;
      const later = stream.published.filter((m) => m.sentAt > resyncAt);
      await eventually(() => hasAll(w, later), `${w.name} received every message published after its resync`);
      expectEveryMessage(w, later);
    }
    await everyViewEqualsRest('after the node kill');

    // gw1 now talks to node 2 (the next in its list).
    const moved = await clusterConnections(2);
    expect(moved.filter((c) => c.name.startsWith('topicgate gw1')).map((c) => c.node)).toEqual([nodeName(2), nodeName(2)]);

    await cluster(['start-node', '1']);
    down = null;
    await eventually(async () => (await runningNodes(2)).length === 3, 'node 1 back in the cluster', { timeoutMs: 60_000, intervalMs: 1_000 });

    // Nothing left behind: one queue per live subscription (one consumer each), none on the node that died, no connection there.
    // The old queues of the resumable subscriptions renewed while node 1 was down came back with it (durable; the gateway's
    // delete was refused, home node down): the gateway deletes them once the node is back, well within the resume window
    // (their x-expires would keep them RESUME_WINDOW_S more). Exclusive queues do not come back at all.
    const backAt = Date.now();
    await eventually(async () => clientQueues(await clusterQueues(1)).every((q) => q.consumers === 1), 'the renewed resumable queues deleted once their node is back', {
      timeoutMs: DEFERRED_DELETE_BOUND_MS,
      intervalMs: 500,
    });
    console.info(`node kill: queues left on node 1 by renewals deleted ${Date.now() - backAt} ms after it rejoined (bound ${DEFERRED_DELETE_BOUND_MS} ms, window ${RESUME_WINDOW_S} s)`);
    const live = clientQueues(await clusterQueues(1));
    expect(live.length).toBe(watchers.length * 3);
    expect(live.filter((q) => q.node === nodeName(1))).toEqual([]);
    expect((await clusterConnections(1)).filter((c) => c.node === nodeName(1))).toEqual([]);
    expect((await channelsPerNode(1))[nodeName(1)]).toBe(0);
    // And node 1 serves again: a publish through it reaches everyone.
    publishers.set(1, await NodePublisher.open(1));
    const check = await new ChangeStream(store, [publishers.get(1)!]).burst(3);
    await eventually(() => watchers.every((w) => hasAll(w, check)), 'a publish through the rejoined node reached every client');
  }, 150_000);

  it('a gateway killed (SIGKILL): its clients reconnect through HAProxy to the other two, resubscribe (plain) or resume (resumable, nothing reloaded, nothing missed) and converge; its exclusive queues vanish with its connection', async () => {
    const before = await placement();
    const victims = watchers.filter((w) => before.get(w.name)!.gateway === 'topicgate gw2');
    const bystanders = watchers.filter((w) => !victims.includes(w));
    expect(victims.filter((w) => !w.resumable).length).toBeGreaterThan(0);
    expect(victims.filter((w) => w.resumable).length).toBeGreaterThan(0);
    expect((await clusterQueues(1)).filter((q) => q.name.startsWith('topicgate.gw2.')).length).toBeGreaterThan(0);
    const resyncsBefore = new Map(watchers.map((w) => [w.name, w.resyncs.length]));
    const reloadsBefore = new Map(watchers.map((w) => [w.name, w.reloads.length]));
    const resumedBefore = new Map(watchers.map((w) => [w.name, w.resumed]));

    const stream = new ChangeStream(store, [publishers.get(1)!, publishers.get(2)!, publishers.get(3)!]);
    stream.start();
    await eventually(() => stream.published.length >= 20, '20 changes published before the kill');
    const killedAt = Date.now();
    await cluster(['kill-gateway', '2']);

    // The broker drops gw2's exclusive queues with its connection.
    await eventually(async () => (await clusterQueues(1)).every((q) => !q.name.startsWith('topicgate.gw2.')), "gw2's exclusive queues deleted by the broker", {
      timeoutMs: 15_000,
      intervalMs: 500,
    });
    // Its clients subscribe again (or resume) through HAProxy, on gw1 and gw3.
    const back = (w: Watcher) => w.resubscribed.some((r) => r.at >= killedAt);
    await eventually(() => victims.every(back), "gw2's clients subscribed again", { timeoutMs: 30_000, intervalMs: 50 });
    const moves = victims.map((w) => w.resubscribed.find((r) => r.at >= killedAt)!.at - killedAt);
    console.info(`gateway kill: ${victims.length} clients subscribed again (or resumed) ${Math.min(...moves)}–${Math.max(...moves)} ms after the SIGKILL`);
    await eventually(allSubscribed, 'every client subscribed and loaded', { timeoutMs: 30_000 });
    const now = await placement();
    for (const w of victims) expect(['topicgate gw1', 'topicgate gw3'], w.name).toContain(now.get(w.name)?.gateway);
    const after = stream.published.length;
    await eventually(() => stream.published.length >= after + 20, '20 more changes after the move');
    await stream.stop();
    await everyViewEqualsRest('after the gateway kill');

    for (const w of victims.filter((v) => !v.resumable)) {
      expect(w.reloads.slice(reloadsBefore.get(w.name)).map((r) => r.reason), w.name).toContain('resubscribed');
    }
    for (const w of victims.filter((v) => v.resumable)) {
      expect(w.resumed, `${w.name} resumed`).toBeGreaterThan(resumedBefore.get(w.name)!);
      expect(countsSince(reloadsBefore, w, 'reloads'), `${w.name} reloaded`).toBe(0);
      expect(countsSince(resyncsBefore, w, 'resyncs'), `${w.name} resynced`).toBe(0);
      await eventually(() => hasAll(w, stream.published), `${w.name} received every message`);
      expectEveryMessage(w, stream.published);
    }
    for (const w of bystanders) {
      expect(countsSince(reloadsBefore, w, 'reloads'), `${w.name} reloaded`).toBe(0);
      await eventually(() => hasAll(w, stream.published), `${w.name} received every message`);
      expectEveryMessage(w, stream.published);
    }
    // Every client queue serves a live subscription.
    await eventually(async () => clientQueues(await clusterQueues(1)).length === watchers.length * 3, 'one queue per live subscription');
    expect(clientQueues(await clusterQueues(1)).filter((q) => q.consumers !== 1)).toEqual([]);

    await cluster(['start-gateway', '2']);
  }, 150_000);

  it('a rolling restart of the three gateways (SIGTERM one at a time, each ready again before the next): every view ends equal to REST, no queue is leaked, and resumable clients reload nothing', async () => {
    const reloadsBefore = new Map(watchers.map((w) => [w.name, w.reloads.length]));
    const loadsBefore = store.loads;
    const stream = new ChangeStream(store, [publishers.get(1)!, publishers.get(2)!, publishers.get(3)!]);
    stream.start();
    await eventually(() => stream.published.length >= 20, '20 changes published before the restarts');
    const started = Date.now();
    for (const n of NODES) await cluster(['restart-gateway', String(n)]);
    const restartMs = Date.now() - started;
    await eventually(allSubscribed, 'every client subscribed after the restarts', { timeoutMs: 30_000 });
    const after = stream.published.length;
    await eventually(() => stream.published.length >= after + 20, '20 more changes after the restarts');
    await stream.stop();
    await everyViewEqualsRest('after the rolling restart');

    const resumable = watchers.filter((w) => w.resumable);
    const plain = watchers.filter((w) => !w.resumable);
    const reloadsOf = (ws: Watcher[]) => ws.reduce((sum, w) => sum + countsSince(reloadsBefore, w, 'reloads'), 0);
    console.info(
      `rolling restart (${restartMs} ms): REST reloads by ${resumable.length} resumable clients: ${reloadsOf(resumable)}; ` +
        `by ${plain.length} plain clients: ${reloadsOf(plain)}; GET /items served: ${store.loads - loadsBefore}`,
    );
    expect(reloadsOf(resumable)).toBe(0);
    for (const w of resumable) {
      await eventually(() => hasAll(w, stream.published), `${w.name} received every message`);
      expectEveryMessage(w, stream.published);
    }
    // No queue leaked: one per live subscription, each consumed; the gateways' queue names are their own again.
    await eventually(async () => clientQueues(await clusterQueues(1)).length === watchers.length * 3, 'one queue per live subscription', { timeoutMs: 20_000, intervalMs: 500 });
    const queues = clientQueues(await clusterQueues(1));
    expect(queues.filter((q) => q.consumers !== 1)).toEqual([]);
    expect(queues.filter((q) => !/^topicgate\.(gw[123]|r)\./.test(q.name))).toEqual([]);
  }, 150_000);

  it("a node restarted while a resumable subscription's client is away: the queue comes back without what it held, and the resume says `lost` (a reload, never a silent gap)", async () => {
    // A protocol-level client straight to gw2, so that its queue is on node 2 and the test cuts its transport when it wants.
    const token = mintToken({ secret, sub: 'away', topics: ['away.#'], ttlSeconds: 3600 });
    const away = await ResumingClient.connect(gatewayUrl(2), token);
    try {
      const held = await away.subscribe('a', 'away.#');
      const { claim } = held.grant;
      const publisher = publishers.get(3)!;
      await publisher.publish('away.1', { n: 1 });
      await eventually(() => held.received.length === 1, 'the first message received');
      away.cut();
      await eventually(async () => (await clusterQueues(3)).some((q) => q.name === claim && q.consumers === 0), 'its queue detached, kept for the window');
      await publisher.publish('away.2', { n: 2 }); // waits in the queue for the client, with the one it did not confirm
      expect((await clusterQueues(3)).find((q) => q.name === claim)).toMatchObject({ node: nodeName(2), messages: 3 }); // and the marker

      // Non-persistent messages do not survive their node's restart, even in a durable queue that does.
      down = 2;
      await cluster(['kill-node', '2']);
      await cluster(['start-node', '2']);
      down = null;
      await eventually(async () => (await runningNodes(3)).length === 3, 'node 2 back in the cluster', { timeoutMs: 60_000, intervalMs: 1_000 });
      expect((await clusterQueues(3)).find((q) => q.name === claim)).toMatchObject({ node: nodeName(2), messages: 0 });

      // A queue whose node is still starting is answered `unavailable`, which a client retries.
      let ack: SubscribeAck | undefined;
      await eventually(async () => {
        ack = (await away.reconnect(gatewayUrl(2))).get('a');
        return !(ack && !ack.ok && ack.error.code === 'unavailable');
      }, 'a resume that is not answered unavailable');
      expect(ack).toMatchObject({ ok: true, resumed: false, reason: 'lost' });
      await publisher.publish('away.3', { n: 3 });
      await eventually(() => held.received.some((d) => (d.body as { n: number }).n === 3), 'the new subscription delivers');
    } finally {
      away.close();
    }
    // The other clients whose queues were on node 2 were told (`resync reconnected`) and converge.
    await everyViewEqualsRest('after node 2 restarted');
  }, 150_000);

  it('leaves nothing behind: clients gone, every queue deleted and the gateways back to their baseline channels; stop leaves nothing running and the machine\'s own broker untouched', async () => {
    for (const w of watchers) w.client.close();
    await eventually(async () => clientQueues(await clusterQueues(1)).length === 0, 'every client queue deleted', { timeoutMs: 20_000, intervalMs: 500 }).catch(async (err: Error) => {
      const left = clientQueues(await clusterQueues(1)).map((q) => `${q.name} on ${q.node}, ${q.consumers} consumers, ${q.messages} messages`);
      throw new Error(`${err.message}; left: ${left.join('; ')}`);
    });
    await eventually(
      async () => JSON.stringify([...(await gatewayChannels())].sort()) === JSON.stringify([...baselineChannels].sort()),
      `gateway channels back to the baseline ${JSON.stringify([...baselineChannels])}`,
      { timeoutMs: 20_000, intervalMs: 500 },
    );
    for (const p of publishers.values()) await p.close();
    publishers.clear();
    // Nothing else holds a channel on any node.
    const channels = await channelsPerNode(1);
    expect(Object.values(channels).reduce((a, b) => a + b, 0)).toBe([...baselineChannels.values()].reduce((a, b) => a + b, 0));

    await cluster(['stop']);
    expect(await rigProcesses()).toEqual([]);
    // The machine's own node (5672) never saw the rig.
    expect(await machineNodeCluster()).toEqual(['rabbit@localhost']);
  }, 120_000);
});
