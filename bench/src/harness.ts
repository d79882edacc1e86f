/**
 * The shared machinery of every scenario: a run context (broker, exchange,
 * the gateway build under test, where results go) and `drive`, which
 * connects receivers in load-generator processes, publishes a plan from the
 * publisher process, and turns what the receivers counted into one result.
 */
import { randomBytes } from 'node:crypto';
import amqp, { type ChannelModel } from 'amqplib';
import { mkdirSync } from 'node:fs';
import { sleep } from './clock.js';
import { Broker } from './broker.js';
import type { BenchOptions } from './options.js';
import { CpuMeter, findBrokerPid, waitForQuiet } from './proc.js';
import { GatewayProcess, Publisher, Worker } from './processes.js';
import { isGatewayKind, type ClientKind, type ClientPlan, type ConnectResult, type PublishPlan, type PublishResult, type WorkerStats } from './messages.js';
import { MergedHistogram, countInWindow } from './stats.js';

/**
 * Where gateway clients connect and whose CPU is the gateway's: a gateway
 * process of the bench, or the cluster rig's HAProxy (with gw1..gw3's pids).
 */
export interface GatewayEndpoint {
  readonly url: string;
  readonly pid: number;
  ready(): Promise<void>;
}

export interface Row {
  scenario: string;
  [key: string]: unknown;
}

/** Descriptors left to the broker for its own files, AMQP connections and management requests when Web-STOMP clients are counted. */
const BROKER_FD_HEADROOM = 200;

export const RAISE_BROKER_FDS =
  'Raise its open-file limit ("rabbitmq soft nofile 20000" and "rabbitmq hard nofile 20000" in /etc/security/limits.d/rabbitmq.conf, ' +
  'since Debian\'s rabbitmq-server wrapper starts the node with 1024; LimitNOFILE=20000 for a systemd unit), restart RabbitMQ, ' +
  'and check `rabbitmqctl status` (File Descriptors).';

export class Bench {
  readonly runId = `${new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '')}-${randomBytes(3).toString('hex')}`;
  /** Every exchange, queue and connection this run creates carries this prefix. */
  readonly prefix = `topicgate-bench.${this.runId}`;
  readonly exchange = `${this.prefix}.exchange`;
  readonly rows: Row[] = [];
  readonly warnings: string[] = [];
  readonly logDir: string;
  private gateways = 0;
  brokerPid = 0;
  /** Grows each time the broker drops our sentinel connection (a restart by someone else). */
  brokerEpoch = 0;
  private sentinel: ChannelModel | null = null;
  private sentinelWanted = false;
  private readonly cleanups: Array<() => Promise<void>> = [];
  private cleaning: Promise<void> | null = null;

  constructor(
    readonly options: BenchOptions,
    readonly broker: Broker,
  ) {
    this.logDir = `${options.resultsDir}/logs`;
    mkdirSync(this.logDir, { recursive: true });
  }

  /**
   * Keeps one idle AMQP connection open for the whole run. When it drops, the
   * broker was restarted or its app stopped (other people's tests do that on a
   * shared broker): every run in progress is void and is run again.
   */
  async watchBroker(): Promise<void> {
    this.sentinelWanted = true;
    for (;;) {
      try {
        const conn = await amqp.connect(this.options.amqpUrl, { clientProperties: { connection_name: `${this.prefix}.sentinel` } });
        conn.on('error', () => undefined);
        conn.once('close', () => {
          this.sentinel = null;
          if (!this.sentinelWanted) return;
          this.brokerEpoch++;
          this.warn('lost the sentinel connection to RabbitMQ: the broker was restarted or stopped (not by the bench)');
          void this.watchBroker();
        });
        this.sentinel = conn;
        return;
      } catch {
        if (!this.sentinelWanted) return;
        await sleep(1000);
      }
    }
  }

  async unwatchBroker(): Promise<void> {
    this.sentinelWanted = false;
    await this.sentinel?.close().catch(() => undefined);
    this.sentinel = null;
  }

  /** Runs `fn`, again (up to 3 times in all) if the broker restarted while it ran. */
  async attempt<T>(what: string, fn: () => Promise<T>): Promise<T> {
    for (let i = 1; ; i++) {
      const epoch = this.brokerEpoch;
      try {
        const result = await fn();
        if (this.brokerEpoch === epoch) return result;
        if (i >= 3) throw new Error(`the broker restarted during ${what} in 3 attempts; someone else keeps restarting it`);
      } catch (err) {
        if (this.brokerEpoch === epoch || i >= 3) throw err;
      }
      this.warn(`the broker restarted during ${what}; running it again`);
      while (!this.sentinel) await sleep(500);
      await sleep(5000); // let the gateway reconnect and the broker settle
      this.brokerPid = findBrokerPid() || this.brokerPid;
    }
  }

  /** Registers something to undo at the end of the run, also after an error or Ctrl-C (run.ts's cleanup). */
  deferCleanup(fn: () => Promise<void>): void {
    this.cleanups.push(fn);
  }

  /** Runs what deferCleanup registered, last first, once (a second call waits for the first); failures become warnings. */
  runCleanups(): Promise<void> {
    this.cleaning ??= (async () => {
      for (const fn of this.cleanups.splice(0).reverse()) await fn().catch((err: Error) => this.warn(err.message));
    })();
    return this.cleaning;
  }

  log(line: string): void {
    process.stderr.write(`[bench] ${line}\n`);
  }

  warn(line: string): void {
    this.warnings.push(line);
    process.stderr.write(`[bench] WARNING: ${line}\n`);
  }

  /** Prints the scenario's one summary line (JSON on stdout) and keeps it for the report. */
  record(row: Row): void {
    this.rows.push(row);
    process.stdout.write(JSON.stringify(row) + '\n');
  }

  /** A fresh gateway process on this run's exchange, with its own gateway id (so its queues are traceable). */
  startGateway(extra: { cpuProfileDir?: string; env?: Record<string, string> } = {}): Promise<GatewayProcess> {
    const gatewayId = `${this.runId}-gw${++this.gateways}`;
    return GatewayProcess.start({
      cliPath: this.options.cliPath,
      amqpUrl: this.options.amqpUrl,
      exchange: this.exchange,
      gatewayId,
      logFile: `${this.logDir}/gateway-${this.runId}.log`,
      nodeArgs: this.options.gatewayNodeArgs,
      ...(extra.cpuProfileDir && { cpuProfileDir: extra.cpuProfileDir }),
      ...(extra.env && { extraEnv: extra.env }),
    });
  }

  /** Starts `count` load generators; `use` runs with them and they are always stopped afterwards. */
  async withWorkers<T>(count: number, use: (workers: Worker[]) => Promise<T>): Promise<T> {
    const workers: Worker[] = [];
    try {
      for (let i = 0; i < count; i++) workers.push(await Worker.start());
      return await use(workers);
    } finally {
      await Promise.all(workers.map((w) => w.stop()));
    }
  }

  /** Starts `count` gateway processes (see startGateway). */
  startGateways(count: number, env?: Record<string, string>): Promise<GatewayProcess[]> {
    return Promise.all(Array.from({ length: count }, () => this.startGateway(env ? { env } : {})));
  }

  /** Gateways for the `resumable` kind: the same build with a resume window (docs/protocol.md §15). */
  startResumableGateways(count: number): Promise<GatewayProcess[]> {
    return this.startGateways(count, { TOPICGATE_RESUME_WINDOW: String(this.options.resumeWindow) });
  }

  /** MQTT client ids of this run start with this; their persistent sessions are queues `mqtt-subscription-<client id>qos1`. */
  get mqttClientPrefix(): string {
    return `${this.prefix}.mqtt.`;
  }

  /**
   * Deletes the session queues the Web-MQTT clients of this run left behind
   * (clean_session=false keeps them after DISCONNECT, for 24 h by default).
   */
  async deleteMqttSessions(): Promise<number> {
    const names = await this.broker.queueNames(`mqtt-subscription-${this.mqttClientPrefix}`);
    await this.broker.deleteQueues(names);
    return names.length;
  }

  /** Deletes this run's raw consumers' queues: `amqp-held` ones are durable and outlive a worker that was killed or crashed. */
  async deleteRawQueues(): Promise<number> {
    const names = await this.broker.queueNames(`${this.prefix}.raw.`);
    await this.broker.deleteQueues(names);
    return names.length;
  }

  /**
   * Web-STOMP clients are file descriptors of the broker's own process. Past
   * its open-file limit RabbitMQ does not merely refuse them: EMFILE also
   * crashes its memory monitor, and the node stays broken for every run after
   * (seen with 1,000 clients under Debian's default 1024). So a Web-STOMP run
   * that does not fit is not attempted; idle measures fewer clients instead.
   */
  async brokerRoomForStomp(): Promise<{ free: number; total: number }> {
    const info = await this.broker.nodeInfo();
    // The broker's socket allowance (about 0.9 of its descriptors) too, in case it counts them.
    const free = Math.min(info.fd_total - info.fd_used, info.sockets_total - info.sockets_used) - BROKER_FD_HEADROOM;
    return { free: Math.max(0, free), total: info.fd_total };
  }

  async ensureBrokerRoomForStomp(clients: number): Promise<void> {
    const { free, total } = await this.brokerRoomForStomp();
    if (free >= clients) return;
    throw new Error(`not run: ${clients} Web-STOMP clients need as many of the broker's file descriptors, and only ${free} of its ${total} are free (RabbitMQ would fail with EMFILE, beyond this run). ${RAISE_BROKER_FDS}`);
  }

  /** Connects `plans` (one per client) spread over the workers; gateway clients go to the workers' gateways in turn. */
  async connect(workers: Worker[], kind: ClientKind, plans: ClientPlan[], gateways: readonly GatewayEndpoint[], concurrency = 25): Promise<ConnectResult> {
    const chunks: ClientPlan[][] = workers.map(() => []);
    plans.forEach((p, i) => chunks[i % workers.length]!.push(p));
    const results = await Promise.all(
      workers.map((w, i) =>
        w.request<ConnectResult>({
          op: 'connect',
          kind,
          clients: chunks[i]!,
          gatewayUrl: gateways.length > 0 ? gateways[i % gateways.length]!.url : '',
          amqpUrl: this.options.amqpUrl,
          stompUrl: this.options.stompUrl,
          mqttUrl: this.options.mqttUrl,
          mqttClientPrefix: this.mqttClientPrefix,
          exchange: this.exchange,
          queuePrefix: `${this.prefix}.raw.`,
          concurrency,
          rawSharedChannel: this.options.rawSharedChannel,
          resumeWindowMs: this.options.resumeWindow * 1000,
        }),
      ),
    );
    return {
      connected: results.reduce((s, r) => s + r.connected, 0),
      subscribed: results.reduce((s, r) => s + r.subscribed, 0),
      failures: mergeFailures(results.flatMap((r) => r.failures)),
      ms: Math.max(...results.map((r) => r.ms)),
    };
  }
}

/** Sums "N× message" lines from several generators that carry the same message. */
function mergeFailures(lines: string[]): string[] {
  const counts = new Map<string, number>();
  for (const line of lines) {
    const m = /^(\d+)× (.*)$/s.exec(line);
    counts.set(m ? m[2]! : line, (counts.get(m ? m[2]! : line) ?? 0) + (m ? Number(m[1]) : 1));
  }
  return [...counts].slice(0, 5).map(([message, n]) => `${n}× ${message}`);
}

export interface DriveSpec {
  kind: ClientKind;
  plans: ClientPlan[];
  publish: Omit<PublishPlan, 'amqpUrl' | 'exchange'>;
  /** The gateway processes gateway clients connect to (spread evenly); empty for other kinds. */
  gateways: readonly GatewayEndpoint[];
  /** Flat-out runs: the stream whose progress grants the publisher credit. */
  creditStream?: number;
  /** Publish to this exchange instead of the run's (Web-MQTT consumes from amq.topic). */
  exchange?: string;
  /** Publish through this broker instead of the bench's (the cluster rig's node). */
  amqpUrl?: string;
  /** The broker's Erlang VMs, for its CPU (default: the bench's broker). */
  brokerPids?: () => number[];
  /** More processes whose CPU is reported, by name (the cluster rig's HAProxy). */
  extraPids?: () => Record<string, number[]>;
}

export interface DriveResult {
  kind: ClientKind;
  clients: number;
  subscriptions: number;
  connectMs: number;
  connectFailures: string[];
  published: number;
  expected: number;
  received: number;
  deliveriesPerSec: number;
  windowSeconds: number;
  p50Ms: number | null;
  p99Ms: number | null;
  maxMs: number | null;
  losses: number;
  duplicates: number;
  outOfOrder: number;
  seqErrors: number;
  resyncs: Record<string, number>;
  unsubscribed: number;
  disconnects: number;
  /** Resumable: `received` requests sent, and those not answered `{ ok: true }`. */
  receipts: number;
  receiptErrors: number;
  /** Gateway kinds: mean deliveries per `messages` event. */
  meanBatch: number | null;
  lateTicks: number;
  /** The measurement window on the shared clock (µs). */
  windowFromUs: number;
  windowToUs: number;
  /** Machine busy % (of one core) just before the run, while everything of ours was idle. */
  busyBefore: number;
  /** % of one core during the measurement window. */
  cpu: Record<string, number>;
  /**
   * CPU µs each side spent per delivery in the window: steadier than
   * deliveries/s when the machine is shared, since it does not depend on how
   * much CPU the process was given.
   */
  cpuUsPerDelivery: Record<string, number>;
}

export async function drive(bench: Bench, spec: DriveSpec): Promise<DriveResult> {
  const { options } = bench;
  const workerCount = Math.max(1, Math.min(options.workers, spec.plans.length));
  if (isGatewayKind(spec.kind)) await Promise.all(spec.gateways.map((g) => g.ready()));
  bench.brokerPid = findBrokerPid() || bench.brokerPid; // a restart by someone else gives the broker a new pid
  if (spec.kind === 'stomp') await bench.ensureBrokerRoomForStomp(spec.plans.length);
  return bench.withWorkers(workerCount, async (workers) => {
    const conn = await bench.connect(workers, spec.kind, spec.plans, spec.gateways);
    if (conn.subscribed === 0) throw new Error(`no ${spec.kind} client could subscribe: ${conn.failures.join('; ')}`);
    if (conn.failures.length) bench.warn(`${spec.kind}: ${conn.failures.join('; ')}`);
    const publisher = await Publisher.start();
    try {
      const quiet = await waitForQuiet(options.quietBusyPct, options.quietMaxMs);
      if (quiet.busyPct > options.quietBusyPct) bench.warn(`the machine was ${quiet.busyPct} % busy (of one core) before ${spec.kind} × ${spec.plans.length} started, after waiting ${Math.round(quiet.waitedMs / 1000)} s for it to calm down: something else is running`);
      const pids = () => ({
        ...(isGatewayKind(spec.kind) && spec.gateways.length > 0 ? { gateway: spec.gateways.map((g) => g.pid) } : {}),
        broker: spec.brokerPids ? spec.brokerPids() : [bench.brokerPid],
        generators: workers.map((w) => w.pid),
        publisher: [publisher.pid],
        ...spec.extraPids?.(),
      });
      const meter = new CpuMeter(pids);
      let cpu: Record<string, number> = {};

      if (spec.creditStream !== undefined) {
        const subscribers = Math.max(1, conn.subscribed);
        // Per client at most 2,000 messages (~0.5 MB) behind: under the gateway's default 1 MiB
        // per-client buffer, so a flat-out run measures delivery, not overflow drops.
        const windowMessages = Math.max(20, Math.min(2000, Math.ceil(options.flatWindow / subscribers)));
        publisher.credit(windowMessages);
        const onProgress = () => {
          let min = Infinity;
          for (const w of workers) if (w.lastProgress >= 0) min = Math.min(min, w.lastProgress);
          if (min !== Infinity) publisher.credit(min + windowMessages);
        };
        for (const w of workers) w.onProgress = onProgress;
        await Promise.all(workers.map((w) => w.request({ op: 'progress', stream: spec.creditStream!, everyMs: 20 })));
      }

      const plan: PublishPlan = { ...spec.publish, amqpUrl: spec.amqpUrl ?? options.amqpUrl, exchange: spec.exchange ?? bench.exchange };
      let warmupTimer: NodeJS.Timeout | null = null;
      const result: PublishResult = await publisher.run(plan, () => {
        warmupTimer = setTimeout(() => meter.reset(), plan.warmupMs);
      });
      if (warmupTimer) clearTimeout(warmupTimer);
      cpu = meter.read();

      // Drain: wait until every subscriber has everything, or nothing has moved for 3 s.
      const collect = () => Promise.all(workers.map((w) => w.request<WorkerStats>({ op: 'stats' })));
      const expectedOf = (stats: WorkerStats[]) => {
        let expected = 0;
        for (const st of stats) for (const [stream, subs] of Object.entries(st.subscribersPerStream)) expected += subs * (result.published[stream] ?? 0);
        return expected;
      };
      const receivedOf = (stats: WorkerStats[]) => stats.reduce((s, st) => s + Object.values(st.perStream).reduce((a, b) => a + b, 0), 0);
      let stats = await collect();
      let last = -1;
      let lastChange = Date.now();
      while (receivedOf(stats) < expectedOf(stats) && Date.now() - lastChange < 3000) {
        await sleep(200);
        stats = await collect();
        const now = receivedOf(stats);
        if (now !== last) (last = now), (lastChange = Date.now());
      }

      const latency = new MergedHistogram();
      for (const st of stats) latency.add(st.latency);
      const window = countInWindow(
        stats.map((s) => s.series),
        result.measureFromUs,
        result.measureToUs,
      );
      const expected = expectedOf(stats);
      const received = receivedOf(stats);
      const resyncs: Record<string, number> = {};
      for (const st of stats) for (const [k, v] of Object.entries(st.resyncs)) resyncs[k] = (resyncs[k] ?? 0) + v;
      const round = (x: number | null) => (x === null ? null : Math.round(x * 100) / 100);
      return {
        kind: spec.kind,
        clients: conn.connected,
        subscriptions: conn.subscribed,
        connectMs: conn.ms,
        connectFailures: conn.failures,
        published: Object.values(result.published).reduce((a, b) => a + b, 0),
        expected,
        received,
        deliveriesPerSec: window.seconds > 0 ? Math.round(window.count / window.seconds) : 0,
        windowSeconds: window.seconds,
        p50Ms: round(latency.quantileMs(0.5)),
        p99Ms: round(latency.quantileMs(0.99)),
        maxMs: round(latency.max ? latency.max / 1000 : null),
        losses: expected - received,
        duplicates: stats.reduce((s, st) => s + st.duplicates, 0),
        outOfOrder: stats.reduce((s, st) => s + st.outOfOrder, 0),
        seqErrors: stats.reduce((s, st) => s + st.seqErrors, 0),
        resyncs,
        unsubscribed: stats.reduce((s, st) => s + st.unsubscribed, 0),
        disconnects: stats.reduce((s, st) => s + st.disconnects, 0),
        receipts: stats.reduce((s, st) => s + st.receipts, 0),
        receiptErrors: stats.reduce((s, st) => s + st.receiptErrors, 0),
        meanBatch: (() => {
          const batches = stats.reduce((s, st) => s + (st.batches ?? 0), 0);
          return batches ? Math.round((stats.reduce((s, st) => s + st.deliveries, 0) / batches) * 10) / 10 : null;
        })(),
        lateTicks: result.lateTicks,
        windowFromUs: result.measureFromUs,
        windowToUs: result.measureToUs,
        busyBefore: quiet.busyPct,
        cpu,
        cpuUsPerDelivery: perDelivery(cpu, window.seconds > 0 ? window.count / window.seconds : 0),
      };
    } finally {
      await publisher.stop();
    }
  });
}

function perDelivery(cpu: Record<string, number>, deliveriesPerSec: number): Record<string, number> {
  const out: Record<string, number> = {};
  if (!deliveriesPerSec) return out;
  for (const k of ['gateway', 'broker', 'generators', 'haproxy']) if (k in cpu) out[k] = Math.round(((cpu[k]! / 100) * 1e6 * 10) / deliveriesPerSec) / 10;
  return out;
}

/** True when a result broke the delivery guarantees (allowed only after an overflow resync). */
export function integrityProblems(r: DriveResult): string[] {
  const problems: string[] = [];
  const overflow = (r.resyncs.overflow ?? 0) > 0;
  if (r.losses && !overflow) problems.push(`${r.losses} lost`);
  if (r.duplicates) problems.push(`${r.duplicates} duplicated`);
  if (r.outOfOrder && !overflow) problems.push(`${r.outOfOrder} out of order`);
  if (r.seqErrors && !overflow) problems.push(`${r.seqErrors} protocol seq gaps`);
  if (r.disconnects) problems.push(`${r.disconnects} unexpected disconnects`);
  if (r.unsubscribed) problems.push(`${r.unsubscribed} unsubscribed by the server`);
  if (r.receiptErrors) problems.push(`${r.receiptErrors} receipts refused or unanswered`);
  return problems;
}
