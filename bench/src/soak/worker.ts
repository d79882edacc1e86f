/**
 * A soak load worker (a child process): a share of the soak's clients, the
 * churn they do on their own (unsubscribe+subscribe pairs at a steady rate,
 * topping up to each client's target), and the orchestrator's one-off
 * orders (cut this client, refresh that one, pause the slow one). It keeps
 * every subscription's check and reports counters, latency and, at the end,
 * the losses.
 */
import jwt from 'jsonwebtoken';
import { sleep } from '../clock.js';
import { Histogram } from '../stats.js';
import { Baselines, emptyCheckCounters, type CheckContext, type LossRecord, type Problem } from './checker.js';
import { SoakClient, type ClientHost } from './client.js';
import { KeySpace, randomSource, tokenTopics, type Scope } from './keys.js';
import type { DrainStatus, InitResult, WorkerCommand, WorkerConfig, WorkerCounters, WorkerResult, WorkerSample } from './messages.js';
import { serveRpc } from './rpc.js';

/** Loss records and problem examples kept for the report; counters stay exact beyond these. */
const MAX_LOSS_RECORDS = 5000;
const MAX_PROBLEMS = 200;
/** Churn pairs in flight at once (a stalled gateway must not pile up thousands). */
const MAX_CHURN_IN_FLIGHT = 20;

function emptyCounters(): WorkerCounters {
  return {
    check: emptyCheckCounters(),
    resyncs: {},
    unsubscribed: {},
    subscribeErrors: {},
    unsubscribeErrors: {},
    refreshErrors: {},
    subscribes: 0,
    churnPairs: 0,
    cuts: {},
    refreshes: {},
    reconnects: 0,
    connectFailures: {},
    unplannedDisconnects: {},
    pauses: 0,
    slowResyncs: {},
    slowDisconnects: 0,
    afterEnd: 0,
    unknownSubscription: 0,
  };
}

class Worker implements ClientHost {
  readonly counters = emptyCounters();
  readonly ctx: CheckContext;
  readonly space: KeySpace;
  readonly url: string;
  closing = false;
  private readonly clients = new Map<number, SoakClient>();
  private readonly losses: LossRecord[] = [];
  private lossesOmitted = 0;
  private readonly problems: Problem[] = [];
  private latencies = { normal: new Histogram(), slow: new Histogram() };
  private readonly random: () => number;
  private timers: NodeJS.Timeout[] = [];
  private churnInFlight = 0;

  constructor(private readonly config: WorkerConfig) {
    this.url = config.gatewayUrl;
    this.space = new KeySpace(config.streams, config.events);
    this.random = randomSource(config.seed);
    this.ctx = {
      space: this.space,
      counters: this.counters.check,
      baselines: new Baselines(),
      loss: (record) => {
        if (this.losses.length < MAX_LOSS_RECORDS) this.losses.push(record);
        else this.lossesOmitted++;
      },
      problem: (problem) => {
        if (this.problems.length < MAX_PROBLEMS) this.problems.push(problem);
      },
    };
    for (const c of config.clients) this.clients.set(c.id, new SoakClient(c.id, c.subscriptions, c.slow, this));
  }

  rng(): number {
    return this.random();
  }

  latency(slow: boolean): Histogram {
    return slow ? this.latencies.slow : this.latencies.normal;
  }

  token(clientId: number, scope: Scope): string {
    const payload = { sub: `soak-client-${clientId}`, topics: tokenTopics(scope, clientId, this.config.streams) };
    return jwt.sign(payload, this.config.jwtSecret, { algorithm: 'HS256', expiresIn: this.config.tokenTtlSeconds });
  }

  /** Connects every client (10 at a time) and waits for their subscriptions to be acked. */
  async init(): Promise<InitResult> {
    const queue = [...this.clients.values()];
    const lane = async () => {
      for (let c = queue.shift(); c; c = queue.shift()) if (await c.connect()) c.topUp();
    };
    await Promise.all(Array.from({ length: 10 }, lane));
    await this.settle(60_000);
    const all = [...this.clients.values()];
    return {
      connected: all.filter((c) => c.connected).length,
      subscribed: all.reduce((s, c) => s + c.liveSubscriptions.length, 0),
      failures: [...Object.entries(this.counters.connectFailures), ...Object.entries(this.counters.subscribeErrors)].map(([k, n]) => `${n}× ${k}`),
    };
  }

  /** Churn at the configured rate, and top-ups every second. */
  start(): void {
    let credit = 0;
    this.timers.push(
      setInterval(() => {
        credit = Math.min(credit + this.config.churnPerSecond / 10, this.config.churnPerSecond);
        const eligible = [...this.clients.values()].filter((c) => !c.slow && c.connected);
        while (credit >= 1 && this.churnInFlight < MAX_CHURN_IN_FLIGHT && eligible.length > 0) {
          credit--;
          const client = eligible[Math.floor(this.random() * eligible.length)]!;
          this.churnInFlight++;
          void client.churnOne().finally(() => this.churnInFlight--);
        }
      }, 100),
      setInterval(() => {
        for (const c of this.clients.values()) c.topUp();
      }, 1000),
    );
  }

  client(id: number): SoakClient {
    const c = this.clients.get(id);
    if (!c) throw new Error(`client ${id} is not in this worker`);
    return c;
  }

  sample(): WorkerSample {
    const all = [...this.clients.values()];
    const { normal, slow } = this.latencies;
    this.latencies = { normal: new Histogram(), slow: new Histogram() };
    return {
      connectedClients: all.filter((c) => c.connected).length,
      liveSubscriptions: all.reduce((s, c) => s + c.liveSubscriptions.length, 0),
      pendingRequests: all.reduce((s, c) => s + c.pendingRequests, 0) + this.churnInFlight,
      latency: normal.toJSON(),
      slowLatency: slow.toJSON(),
      counters: this.counters,
    };
  }

  /**
   * Stops churn, lets the slow client read again, waits for clients cut
   * last to be back and tops everyone up once more: the end state (queues,
   * file descriptors, channels) is then the full set of clients and
   * subscriptions, comparable with the level after warm-up. Returns how many
   * requests are still unanswered.
   */
  async quiesce(): Promise<number> {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    for (const c of this.clients.values()) c.resume();
    const deadline = Date.now() + 30_000;
    while ([...this.clients.values()].some((c) => !c.connected) && Date.now() < deadline) await sleep(100);
    await this.settle(Math.max(0, deadline - Date.now()));
    for (const c of this.clients.values()) c.topUp();
    return this.settle(Math.max(1000, deadline - Date.now()));
  }

  drain(gEnd: number): DrainStatus {
    let behind = 0;
    for (const c of this.clients.values()) for (const check of c.liveSubscriptions) if (!check.drained(gEnd)) behind++;
    return { behind, deliveries: this.counters.check.deliveries };
  }

  /** Judges every live subscription up to the last message published; the subscriptions stay open. */
  collect(gEnd: number): WorkerResult {
    const liveQueues: string[] = [];
    for (const c of this.clients.values()) {
      for (const check of c.liveSubscriptions) {
        check.end('run end', gEnd);
        liveQueues.push(`topicgate.${this.config.gatewayId}.${check.info.id}`);
      }
    }
    return { counters: this.counters, losses: this.losses, lossesOmitted: this.lossesOmitted, problems: this.problems, liveQueues };
  }

  close(): void {
    this.closing = true;
    for (const t of this.timers) clearInterval(t);
    for (const c of this.clients.values()) c.close();
  }

  /** Waits (at most `maxMs`) until no request is in flight; returns how many still are. */
  private async settle(maxMs: number): Promise<number> {
    const deadline = Date.now() + maxMs;
    const inFlight = () => [...this.clients.values()].reduce((s, c) => s + c.pendingRequests, 0) + this.churnInFlight;
    while (inFlight() > 0 && Date.now() < deadline) await sleep(100);
    return inFlight();
  }
}

let worker: Worker | null = null;

function need(): Worker {
  if (!worker) throw new Error('the worker was not initialised');
  return worker;
}

serveRpc<WorkerCommand>(
  async (cmd) => {
    switch (cmd.op) {
      case 'init':
        worker = new Worker(cmd.config);
        return worker.init();
      case 'start':
        return need().start();
      case 'cut':
        return need().client(cmd.client).cut(cmd.method);
      case 'refresh':
        return need().client(cmd.client).refresh(cmd.scope);
      case 'pause':
        return need().client(cmd.client).pause(cmd.ms);
      case 'sample':
        return need().sample();
      case 'quiesce':
        return need().quiesce();
      case 'drain':
        return need().drain(cmd.gEnd);
      case 'collect':
        return need().collect(cmd.gEnd);
      case 'close':
        worker?.close();
        await sleep(200); // let the disconnect packets go out
        return null;
    }
  },
  async () => {
    worker?.close();
    await sleep(200);
  },
);
