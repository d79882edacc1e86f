/**
 * The cluster rig (scripts/cluster.sh, docs/cluster.md) as the bench drives
 * it: started on the bench's exchange with the bench's gateway limits, in a
 * state directory of its own, always stopped afterwards (errors and Ctrl-C
 * too); the pids whose CPU the cluster arm reports; and the cluster's broker
 * memory, summed over its three nodes.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { exited } from './processes.js';
import { REPO_ROOT } from './paths.js';

export const RIG_NODES = ['tgc1@localhost', 'tgc2@localhost', 'tgc3@localhost'] as const;
/** HAProxy in front of the rig's three gateways (ops/cluster/haproxy.cfg). */
export const RIG_URL = 'http://127.0.0.1:8180';
/** AMQP URL of rig node `n` (1-3). */
export const rigAmqpUrl = (n: number) => `amqp://guest:guest@127.0.0.1:${5680 + n}`;

/** One read of the cluster: erlang:memory(total) per node (bytes) and the queues the cluster knows. */
export interface ClusterMemory {
  perNode: Record<string, number>;
  total: number;
  queues: number;
}

/**
 * One `rabbitmqctl eval` on node 1 that reads all three nodes (one CLI start
 * instead of three: each costs a second or two of an Erlang VM booting on
 * this box). The value printed is
 * `{[{tgc1@localhost,Bytes},…],Queues}` (atoms unquoted), possibly wrapped
 * over lines.
 */
export const MEMORY_EVAL = `{[{N, rpc:call(N, erlang, memory, [total])} || N <- [${RIG_NODES.map((n) => `'${n}'`).join(', ')}]], mnesia:table_info(rabbit_queue, size)}.`;

/** Parses MEMORY_EVAL's output; throws when a node did not answer with a number (down, {badrpc, …}). */
export function parseClusterMemory(text: string): ClusterMemory {
  const perNode: Record<string, number> = {};
  for (const m of text.matchAll(/\{'?([\w.-]+@[\w.-]+)'?,\s*(\d+)\}/g)) perNode[m[1]!] = Number(m[2]);
  const missing = RIG_NODES.filter((n) => !(n in perNode));
  if (missing.length) throw new Error(`no memory figure from ${missing.join(', ')} in: ${text.trim().slice(0, 200)}`);
  const queues = /\],\s*(\d+)\}\s*$/.exec(text.trim());
  if (!queues) throw new Error(`no queue count in: ${text.trim().slice(0, 200)}`);
  return { perNode, total: Object.values(perNode).reduce((a, b) => a + b, 0), queues: Number(queues[1]) };
}

const KiB = 1024;
const round1 = (x: number) => Math.round(x * 10) / 10;

/**
 * Broker memory per subscription from three reads — before subscribing,
 * with the subscriptions, after they are gone — as idle.ts computes it for
 * one node: the mean of what subscribing added and what closing released,
 * `noisy` when the two disagree by more than 30 %. Per node: what each one's
 * memory grew by, KiB per subscription of the whole run.
 */
export function memoryPerSubscription(before: ClusterMemory, during: ClusterMemory, after: ClusterMemory, subscriptions: number) {
  if (!subscriptions) return { perSubscriptionKiB: null, addedKiB: null, releasedKiB: null, noisy: false, perNodeAddedKiB: {} as Record<string, number> };
  const added = round1((during.total - before.total) / subscriptions / KiB);
  const released = round1((during.total - after.total) / subscriptions / KiB);
  const perNodeAddedKiB: Record<string, number> = {};
  for (const n of Object.keys(during.perNode)) perNodeAddedKiB[n] = round1(((during.perNode[n] ?? 0) - (before.perNode[n] ?? 0)) / subscriptions / KiB);
  return {
    perSubscriptionKiB: round1((added + released) / 2),
    addedKiB: added,
    releasedKiB: released,
    noisy: Math.abs(added - released) > 0.3 * Math.max(Math.abs(added), Math.abs(released)),
    perNodeAddedKiB,
  };
}

/** The median (by total) of `reads`. */
export function medianRead(reads: ClusterMemory[]): ClusterMemory {
  return [...reads].sort((a, b) => a.total - b.total)[Math.floor(reads.length / 2)]!;
}

export interface RigOptions {
  /** TOPICGATE_CLUSTER_DIR of this rig (not the default one, nor the cluster tests'). */
  dir: string;
  /** TOPICGATE_* settings for the rig's gateways. */
  gatewayEnv: Record<string, string>;
  log: (line: string) => void;
}

export class ClusterRig {
  private starting: ChildProcess | null = null;
  private startedOnce = false;
  private stopping: Promise<void> | null = null;
  readonly script = `${REPO_ROOT}scripts/cluster.sh`;

  constructor(readonly options: RigOptions) {}

  private env(): NodeJS.ProcessEnv {
    return { ...process.env, ...this.options.gatewayEnv, TOPICGATE_CLUSTER_DIR: this.options.dir };
  }

  /**
   * `scripts/cluster.sh start` (about a minute on 2 cores). Its own process
   * group, so a Ctrl-C meant for the bench does not cut it half-way: stop()
   * ends it instead, then stops what it started.
   */
  async start(): Promise<number> {
    if (process.getuid?.() !== 0) throw new Error('the cluster scenario needs root (scripts/cluster.sh runs the RabbitMQ nodes as the rabbitmq user)');
    if (existsSync(this.options.dir)) throw new Error(`${this.options.dir} exists: a rig of an earlier run was not stopped; run \`TOPICGATE_CLUSTER_DIR=${this.options.dir} scripts/cluster.sh stop\``);
    const started = Date.now();
    this.startedOnce = true;
    const child = spawn(this.script, ['start'], { env: this.env(), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    this.starting = child;
    let output = '';
    const keep = (chunk: Buffer) => {
      output += chunk.toString();
      for (const line of chunk.toString().split('\n')) if (line.trim()) this.options.log(line.trim());
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    this.starting = null;
    if (code !== 0) throw new Error(`scripts/cluster.sh start failed (${code}): ${output.trim().split('\n').slice(-2).join(' / ')}`);
    return Date.now() - started;
  }

  /** `scripts/cluster.sh stop`, once, whatever state start() left; resolves with nothing left or a complaint thrown. */
  stop(): Promise<void> {
    if (!this.startedOnce) return Promise.resolve();
    this.stopping ??= (async () => {
      if (this.starting?.pid && this.starting.exitCode === null) {
        this.options.log('cluster: interrupting scripts/cluster.sh start');
        try {
          process.kill(-this.starting.pid, 'SIGTERM');
        } catch {
          /* already gone */
        }
        if (!(await exited(this.starting, 10_000))) process.kill(-this.starting.pid, 'SIGKILL');
      }
      const stopper = spawn(this.script, ['stop'], { env: { ...process.env, TOPICGATE_CLUSTER_DIR: this.options.dir }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
      let output = '';
      stopper.stdout!.on('data', (c: Buffer) => (output += c.toString()));
      stopper.stderr!.on('data', (c: Buffer) => (output += c.toString()));
      const code = await new Promise<number | null>((resolve) => stopper.once('exit', (c) => resolve(c)));
      for (const line of output.split('\n')) if (line.trim()) this.options.log(line.trim());
      if (code !== 0) throw new Error(`scripts/cluster.sh stop failed (${code}): ${output.trim().split('\n').slice(-2).join(' / ')}`);
    })();
    return this.stopping;
  }

  private pidsIn(file: string): number[] {
    try {
      return readFileSync(`${this.options.dir}/${file}`, 'utf8').split(/\s+/).filter(Boolean).map(Number).filter((p) => p > 0);
    } catch {
      return [];
    }
  }

  /** gw1..gw3's pids. */
  gatewayPids(): number[] {
    return [1, 2, 3].flatMap((n) => this.pidsIn(`gw${n}.pid`));
  }

  /** The three nodes' Erlang VMs. */
  nodePids(): number[] {
    return [1, 2, 3].flatMap((n) => this.pidsIn(`tgc${n}/pid`));
  }

  haproxyPids(): number[] {
    return this.pidsIn('haproxy.pid');
  }

  /** erlang:memory(total) of every node and the cluster's queue count (one rabbitmqctl eval). */
  memory(): Promise<ClusterMemory> {
    return new Promise((resolve, reject) => {
      execFile('rabbitmqctl', ['-q', '-n', RIG_NODES[0], 'eval', MEMORY_EVAL], { timeout: 60_000 }, (err, stdout, stderr) => {
        if (err) return reject(new Error(`rabbitmqctl -n ${RIG_NODES[0]} eval: ${(stderr || err.message).trim().slice(0, 200)}`));
        try {
          resolve(parseClusterMemory(stdout));
        } catch (e) {
          reject(e as Error);
        }
      });
    });
  }
}
