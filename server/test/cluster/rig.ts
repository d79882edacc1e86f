/**
 * The cluster rig (scripts/cluster.sh, docs/cluster.md) as the cluster tests
 * drive it: the script's commands, the cluster seen through `rabbitmqctl -n`
 * (queues with their node, bindings, connections and channels), and an
 * application beside it — a REST API over a store of items and a publisher
 * on a chosen node that changes an item, then publishes it (with confirms),
 * as a back end does.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import amqp from 'amqplib';

const run = promisify(execFile);

export const SCRIPT = fileURLToPath(new URL('../../../scripts/cluster.sh', import.meta.url));
/** The tests' own state directory, so that a rig an operator started is never the one the tests stop. */
export const RIG_DIR = '/tmp/topicgate-cluster-test';
export const HAPROXY_URL = 'http://127.0.0.1:8180';
export const NODES = [1, 2, 3] as const;
export type NodeIndex = (typeof NODES)[number];
export const nodeName = (n: NodeIndex) => `tgc${n}@localhost`;
export const amqpUrl = (n: NodeIndex) => `amqp://guest:guest@127.0.0.1:${5680 + n}`;
export const gatewayUrl = (n: NodeIndex) => `http://127.0.0.1:${8180 + n}`;
export const EXCHANGE = 'topicgate';

/** Runs `scripts/cluster.sh <args>` with the tests' rig directory and these gateway settings. */
export async function cluster(args: string[], env: Record<string, string> = {}, timeoutMs = 180_000): Promise<string> {
  try {
    const { stdout, stderr } = await run(SCRIPT, args, {
      env: { ...process.env, ...env, TOPICGATE_CLUSTER_DIR: RIG_DIR },
      timeout: timeoutMs,
      maxBuffer: 16 * 1024 * 1024,
    });
    return stdout + stderr;
  } catch (err) {
    const e = err as Error & { stdout?: string; stderr?: string };
    throw new Error(`scripts/cluster.sh ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
}

/** The HMAC secret the rig made for its gateways. */
export function rigSecret(): string {
  return readFileSync(`${RIG_DIR}/jwt-secret`, 'utf8').trim();
}

/** rabbitmqctl against one rig node (always `-n`; never the machine's own node). */
async function ctl(node: NodeIndex, ...args: string[]): Promise<string[][]> {
  const { stdout } = await run('rabbitmqctl', ['-n', nodeName(node), '-q', '--no-table-headers', ...args], { maxBuffer: 64 * 1024 * 1024, timeout: 60_000 });
  return stdout
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => line.split('\t'));
}

/** The nodes the cluster reports running, asked of `via`. */
export async function runningNodes(via: NodeIndex): Promise<string[]> {
  const { stdout } = await run('rabbitmqctl', ['-n', nodeName(via), '-q', 'cluster_status', '--formatter', 'json'], { timeout: 60_000 });
  return (JSON.parse(stdout) as { running_nodes: string[] }).running_nodes.sort();
}

/** The running nodes of the machine's own broker (rabbit@localhost on 5672), which the rig must never touch. */
export async function machineNodeCluster(): Promise<string[]> {
  const { stdout } = await run('rabbitmqctl', ['-n', 'rabbit@localhost', '-q', 'cluster_status', '--formatter', 'json'], { timeout: 60_000 });
  return (JSON.parse(stdout) as { running_nodes: string[] }).running_nodes.sort();
}

export interface ClusterQueue {
  name: string;
  /** The node the queue lives on (from its process id, `<tgc2@localhost.…>`). */
  node: string;
  durable: boolean;
  exclusive: boolean;
  consumers: number;
  /** Ready and unacknowledged. */
  messages: number;
  /** Its `x-expires` argument in ms, if any (resumable queues: the resume window). */
  expiresMs: number | undefined;
}

/** Every queue of the cluster, asked of `via`, with the node it lives on. */
export async function clusterQueues(via: NodeIndex): Promise<ClusterQueue[]> {
  const rows = await ctl(via, 'list_queues', 'name', 'pid', 'durable', 'exclusive', 'consumers', 'arguments', 'messages');
  return rows.map(([name, pid, durable, exclusive, consumers, args, messages]) => ({
    name: name!,
    node: /^<([^.]+@[^.]+)\./.exec(pid ?? '')?.[1] ?? `? ${pid}`,
    durable: durable === 'true',
    exclusive: exclusive === 'true',
    consumers: Number(consumers),
    messages: Number(messages),
    expiresMs: /"x-expires",(\d+)/.test(args ?? '') ? Number(/"x-expires",(\d+)/.exec(args!)![1]) : undefined,
  }));
}

/** Queue name → binding keys on `exchange`. */
export async function clusterBindings(via: NodeIndex, exchange = EXCHANGE): Promise<Map<string, string[]>> {
  const rows = await ctl(via, 'list_bindings', 'source_name', 'destination_name', 'routing_key');
  const bound = new Map<string, string[]>();
  for (const [source, destination, key] of rows) {
    if (source !== exchange) continue;
    bound.set(destination!, [...(bound.get(destination!) ?? []), key!]);
  }
  return bound;
}

export interface ClusterConnection {
  name: string;
  node: string;
  channels: number;
}

/** Every AMQP connection of the cluster with its client-provided name and channel count. */
export async function clusterConnections(via: NodeIndex): Promise<ClusterConnection[]> {
  const rows = await ctl(via, 'list_connections', 'pid', 'channels', 'client_properties');
  return rows.map(([pid, channels, properties]) => ({
    name: /\{"connection_name","([^"]*)"\}/.exec(properties ?? '')?.[1] ?? '(unnamed)',
    node: /^<([^.]+@[^.]+)\./.exec(pid ?? '')?.[1] ?? `? ${pid}`,
    channels: Number(channels),
  }));
}

/** Queue → name of the AMQP connection its consumer is on ("topicgate gw2"), through consumer → channel → connection. */
export async function consumerConnections(via: NodeIndex): Promise<Map<string, string>> {
  const [consumers, channels, connections] = await Promise.all([
    ctl(via, 'list_consumers', 'queue_name', 'channel_pid'),
    ctl(via, 'list_channels', 'pid', 'connection'),
    ctl(via, 'list_connections', 'pid', 'client_properties'),
  ]);
  const connectionName = new Map(connections.map(([pid, properties]) => [pid!, /\{"connection_name","([^"]*)"\}/.exec(properties ?? '')?.[1] ?? '?']));
  const channelConnection = new Map(channels.map(([pid, connection]) => [pid!, connection!]));
  return new Map(consumers.map(([queue, channel]) => [queue!, connectionName.get(channelConnection.get(channel!) ?? '') ?? '?']));
}

/** Channels per node, counted from the channel list (what the broker holds, whoever owns it). */
export async function channelsPerNode(via: NodeIndex): Promise<Record<string, number>> {
  const rows = await ctl(via, 'list_channels', 'pid');
  const counts: Record<string, number> = Object.fromEntries(NODES.map((n) => [nodeName(n), 0]));
  for (const [pid] of rows) {
    const node = /^<([^.]+@[^.]+)\./.exec(pid ?? '')?.[1] ?? '?';
    counts[node] = (counts[node] ?? 0) + 1;
  }
  return counts;
}

/**
 * Processes of the rig still alive on this machine. A RabbitMQ 3.10 node's
 * command line does not name the node, so candidates found by `pgrep` (Erlang
 * VMs and their helpers, HAProxy, gateways) are told apart by their
 * environment: scripts/cluster.sh exports TOPICGATE_CLUSTER_DIR to everything
 * it starts. Other tests' gateways and the machine's own node do not have it.
 */
export async function rigProcesses(): Promise<string[]> {
  const { stdout } = await run('pgrep', ['-f', 'beam.smp|erl_child_setup|inet_gethost|epmd|haproxy|cli.js serve']).catch(() => ({ stdout: '' }));
  const found: string[] = [];
  for (const pid of stdout.split('\n').filter((line) => line.trim() !== '')) {
    let environ: string;
    let cmdline: string;
    try {
      environ = readFileSync(`/proc/${pid}/environ`, 'latin1');
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'latin1').replaceAll('\0', ' ');
    } catch {
      continue; // gone meanwhile
    }
    if (environ.split('\0').includes(`TOPICGATE_CLUSTER_DIR=${RIG_DIR}`)) found.push(`${pid} ${cmdline.slice(0, 120)}`);
  }
  return found;
}

// ---------------------------------------------------------------------------
// The application: a REST API over items, and publishers on chosen nodes.

export interface Item {
  id: number;
  version: number;
  value: string;
}

/** Items changed one at a time: store first, then publish, as a back end with a database does. */
export class ItemStore {
  readonly items = new Map<number, Item>();
  #server: Server | null = null;
  url = '';
  /** GET /items loads served (every REST load of every client). */
  loads = 0;

  constructor(count: number) {
    for (let id = 1; id <= count; id++) this.items.set(id, { id, version: 1, value: `item ${id} v1` });
  }

  snapshot(): Item[] {
    return [...this.items.values()].map((item) => ({ ...item })).sort((a, b) => a.id - b.id);
  }

  /** Next version of item `id` (stored), to be published. */
  change(id: number): Item {
    const previous = this.items.get(id)!;
    const next = { id, version: previous.version + 1, value: `item ${id} v${previous.version + 1}` };
    this.items.set(id, next);
    return { ...next };
  }

  async listen(): Promise<void> {
    this.#server = createServer((req, res) => {
      if (req.url === '/items') {
        this.loads++;
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(this.snapshot()));
      } else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => this.#server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    if (!this.#server) return;
    this.#server.closeAllConnections();
    await new Promise((resolve) => this.#server!.close(resolve));
  }
}

export interface Published {
  key: string;
  id: number;
  version: number;
  node: NodeIndex;
  /** When the broker confirmed it. */
  at: number;
  /** When its last (confirmed) attempt was sent: the broker routed it after this. */
  sentAt: number;
  /** Publishes it took: more than 1 when the broker nacked (each queue may hold up to this many copies). */
  attempts: number;
}

/** A publisher connected to one node, with confirms. */
export class NodePublisher {
  private constructor(
    readonly node: NodeIndex,
    private readonly connection: amqp.ChannelModel,
    private readonly channel: amqp.ConfirmChannel,
  ) {}

  static async open(node: NodeIndex): Promise<NodePublisher> {
    const connection = await amqp.connect(amqpUrl(node), { clientProperties: { connection_name: `cluster-test publisher ${node}` } });
    connection.on('error', () => undefined);
    const channel = await connection.createConfirmChannel();
    channel.on('error', () => undefined);
    await channel.assertExchange(EXCHANGE, 'topic', { durable: true });
    return new NodePublisher(node, connection, channel);
  }

  publish(key: string, body: object): Promise<void> {
    return new Promise((resolve, reject) =>
      this.channel.publish(EXCHANGE, key, Buffer.from(JSON.stringify(body)), { contentType: 'application/json' }, (err) => (err ? reject(err) : resolve())),
    );
  }

  async close(): Promise<void> {
    await this.connection.close().catch(() => undefined);
  }
}

/**
 * Changes items one after another, each publish confirmed before the next,
 * on the given publishers in turn: so every queue receives each item's
 * versions in order, whichever node each went through.
 */
export class ChangeStream {
  readonly published: Published[] = [];
  #stopped = false;
  #done: Promise<void> | null = null;
  #next = 0;

  constructor(
    private readonly store: ItemStore,
    private readonly publishers: readonly NodePublisher[],
    private readonly pauseMs = 15,
  ) {}

  /** Publishes `count` changes, round robin over publishers and items, and resolves when all are confirmed. */
  async burst(count: number): Promise<Published[]> {
    const out: Published[] = [];
    for (let i = 0; i < count; i++) out.push(await this.one());
    return out;
  }

  start(): void {
    this.#stopped = false;
    this.#done = (async () => {
      while (!this.#stopped) {
        await this.one();
        await new Promise((resolve) => setTimeout(resolve, this.pauseMs));
      }
    })();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#done;
  }

  /**
   * One change, published until the broker confirms it. A broker nacks a
   * message it routed to a queue on a node that just died (until the cluster
   * has dropped that node's queues), so a back end publishes again: queues
   * that took the first copy get the same version twice, which views ignore.
   */
  private async one(): Promise<Published> {
    const publisher = this.publishers[this.#next % this.publishers.length]!;
    const id = 1 + (this.#next % this.store.items.size);
    this.#next++;
    const item = this.store.change(id);
    const key = `items.${id}`;
    for (let attempt = 1; ; attempt++) {
      const sentAt = Date.now();
      try {
        await publisher.publish(key, item);
        const published = { key, id, version: item.version, node: publisher.node, at: Date.now(), sentAt, attempts: attempt };
        this.published.push(published);
        return published;
      } catch (err) {
        if (attempt >= 20) throw new Error(`publishing ${key} v${item.version} through node ${publisher.node} failed ${attempt} times: ${(err as Error).message}`);
        this.nacks++;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  }

  /** Publishes the broker refused (nacked) and that were published again. */
  nacks = 0;
}
