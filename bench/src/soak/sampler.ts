/**
 * Every few seconds: the gateway's memory, file descriptors and CPU, what the
 * broker holds for it (queues, channels of its connection), what the clients
 * hold and saw, and publish → deliver latency. The samples are what the
 * flatness and growth judgements are made from.
 */
import { readdirSync } from 'node:fs';
import type { Broker } from '../broker.js';
import { CpuMeter, rssBytes } from '../proc.js';
import type { GatewayProcess } from '../processes.js';
import { MergedHistogram } from '../stats.js';
import type { GatewayLog } from './gateway-log.js';
import type { PublisherProgress, WorkerCommand, WorkerCounters, WorkerSample } from './messages.js';
import type { RpcChild } from './rpc.js';
import { sumCounters } from './totals.js';

const MiB = 1024 * 1024;

export interface Sample {
  /** Seconds since publishing started. */
  atS: number;
  rssMiB: number;
  heapUsedMiB: number | null;
  /** Heap after a full GC in the gateway (every 6th sample): live objects only, the better leak signal. */
  heapAfterGcMiB: number | null;
  fds: number;
  /** The gateway's queues on the broker, and the subscriptions the clients hold (acked, not ended). */
  queues: number | null;
  liveSubscriptions: number;
  pendingRequests: number;
  connectedClients: number;
  /** Channels of the gateway's connection, from the management API (its stats lag by up to 5 s). */
  channels: number | null;
  /** The gateway's own count (`topicgate_broker_channels`). */
  channelsMetric: number | null;
  gatewaySubscriptions: number | null;
  deliveriesPerSec: number;
  published: number;
  confirmed: number;
  p50Ms: number | null;
  p99Ms: number | null;
  lost: number;
  lostAnnounced: number;
  channelCloses: number;
  /** % of one core since the previous sample. */
  cpu: Record<string, number>;
}

export interface SamplerDeps {
  gateway: GatewayProcess;
  broker: Broker;
  workers: Array<RpcChild<WorkerCommand>>;
  publisherPid: () => number;
  brokerPid: number;
  log: GatewayLog;
  publisher: () => PublisherProgress | null;
  startedAt: number;
}

export class Sampler {
  readonly samples: Sample[] = [];
  /** Every gateway queue seen on the broker: first and last sample (seconds) it was there. */
  readonly queueSightings = new Map<string, { first: number; last: number }>();
  readonly latency = new MergedHistogram();
  readonly slowLatency = new MergedHistogram();
  counters: WorkerCounters | null = null;
  private readonly cpu: CpuMeter;
  private lastDeliveries = 0;
  private lastAt = performance.now();
  private count = 0;

  constructor(private readonly deps: SamplerDeps) {
    this.cpu = new CpuMeter(() => ({
      gateway: [deps.gateway.pid],
      broker: deps.brokerPid ? [deps.brokerPid] : [],
      workers: deps.workers.map((w) => w.pid),
      publisher: [deps.publisherPid()].filter((p) => p > 0),
      soak: [process.pid],
    }));
  }

  get queuePrefix(): string {
    return `topicgate.${this.deps.gateway.options.gatewayId}.`;
  }

  async take(): Promise<Sample> {
    const { gateway, broker, workers, log } = this.deps;
    const full = this.count++ % 6 === 5;
    const cpu = this.cpu.read();
    this.cpu.reset();
    const atS = Math.round((Date.now() - this.deps.startedAt) / 100) / 10;

    const [[memory, afterGc], queues, channels, metrics, replies] = await Promise.all([
      this.gatewayMemory(full),
      broker.queueNames(this.queuePrefix).catch(() => null),
      this.connectionChannels().catch(() => null),
      gateway.metrics().catch(() => null),
      Promise.all(workers.map((w) => w.request<WorkerSample>({ op: 'sample' }))),
    ]);
    for (const name of queues ?? []) {
      const seen = this.queueSightings.get(name);
      if (seen) seen.last = atS;
      else this.queueSightings.set(name, { first: atS, last: atS });
    }
    const interval = new MergedHistogram();
    for (const r of replies) {
      interval.add(r.latency);
      this.latency.add(r.latency);
      this.slowLatency.add(r.slowLatency);
    }
    this.counters = sumCounters(replies.map((r) => r.counters));
    const now = performance.now();
    const deliveries = this.counters.check.deliveries;
    const perSec = Math.round((deliveries - this.lastDeliveries) / ((now - this.lastAt) / 1000));
    this.lastDeliveries = deliveries;
    this.lastAt = now;
    const logSummary = log.scan();
    const pub = this.deps.publisher();
    const round = (x: number | null, d = 1) => (x === null ? null : Math.round(x * 10 ** d) / 10 ** d);
    const sample: Sample = {
      atS,
      rssMiB: round(rssBytes(gateway.pid) / MiB)!,
      heapUsedMiB: memory ? round(memory.heapUsed / MiB) : null,
      heapAfterGcMiB: afterGc ? round(afterGc.heapUsed / MiB) : null,
      fds: openFds(gateway.pid),
      queues: queues?.length ?? null,
      liveSubscriptions: replies.reduce((s, r) => s + r.liveSubscriptions, 0),
      pendingRequests: replies.reduce((s, r) => s + r.pendingRequests, 0),
      connectedClients: replies.reduce((s, r) => s + r.connectedClients, 0),
      channels,
      channelsMetric: metrics?.topicgate_broker_channels ?? null,
      gatewaySubscriptions: metrics?.topicgate_subscriptions ?? null,
      deliveriesPerSec: perSec,
      published: pub?.published ?? 0,
      confirmed: pub?.confirmed ?? 0,
      p50Ms: round(interval.quantileMs(0.5), 2),
      p99Ms: round(interval.quantileMs(0.99), 2),
      lost: this.counters.check.lost,
      lostAnnounced: this.counters.check.lostAnnounced,
      channelCloses: logSummary.channelClosed + logSummary.consumerChannelClosed,
      cpu,
    };
    this.samples.push(sample);
    return sample;
  }

  /**
   * process.memoryUsage() in the gateway, and with `full` again after a full
   * GC. One request at a time: the preload's replies carry no request id.
   */
  private async gatewayMemory(full: boolean): Promise<[NodeJS.MemoryUsage | null, NodeJS.MemoryUsage | null]> {
    const { gateway } = this.deps;
    try {
      const now = await gateway.memory();
      if (!full) return [now, null];
      await gateway.gc();
      return [now, await gateway.memory()];
    } catch {
      return [null, null];
    }
  }

  /** Channels of the gateway's AMQP connection (named `topicgate <gateway id>`), per the management API. */
  async connectionChannels(): Promise<number | null> {
    const name = `topicgate ${this.deps.gateway.options.gatewayId}`;
    const conns = await this.deps.broker.api<Array<{ channels?: number; client_properties?: { connection_name?: string } }>>('/connections?columns=channels,client_properties');
    const mine = conns.filter((c) => c.client_properties?.connection_name === name);
    // A connection younger than the broker's stats interval has no `channels` yet: unknown, not 0.
    if (mine.length === 0 || mine.some((c) => c.channels === undefined)) return null;
    return mine.reduce((s, c) => s + c.channels!, 0);
  }
}

export function openFds(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return 0;
  }
}

/** One progress line on stderr per sample. */
export function describeSample(s: Sample): string {
  const clock = `${Math.floor(s.atS / 60)}:${String(Math.floor(s.atS % 60)).padStart(2, '0')}`;
  const ms = (x: number | null) => (x === null ? '—' : `${x} ms`);
  return (
    `${clock} subs ${s.liveSubscriptions} (queues ${s.queues ?? '?'}) clients ${s.connectedClients}` +
    ` | ${s.deliveriesPerSec.toLocaleString('en-US')} deliveries/s p50 ${ms(s.p50Ms)} p99 ${ms(s.p99Ms)}` +
    ` | rss ${s.rssMiB} MiB heap ${s.heapUsedMiB ?? '?'} MiB fds ${s.fds} channels ${s.channels ?? '?'}/${s.channelsMetric ?? '?'}` +
    ` | lost ${s.lost} (announced ${s.lostAnnounced}) channel closes ${s.channelCloses}` +
    ` | cpu gw ${s.cpu.gateway ?? '?'} broker ${s.cpu.broker ?? '?'} workers ${s.cpu.workers ?? '?'} others ${s.cpu.others ?? '?'} machine ${s.cpu.machine ?? '?'}`
  );
}
