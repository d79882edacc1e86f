/**
 * The child processes of a bench run — the gateway under test, the load
 * generators and the publisher — and the guarantee that none outlives the
 * run: every child is registered, killed on exit (normal, error or signal),
 * and the children themselves exit when their IPC channel to us closes.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { sleep } from './clock.js';
import { freePort } from './proc.js';
import type { PublishPlan, PublishResult, PublisherEvent, WorkerCommand, WorkerEvent } from './messages.js';

const live = new Set<ChildProcess>();

/** Registers a child so that it is killed when this process exits, whatever the reason. */
export function track(child: ChildProcess): ChildProcess {
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

/** SIGKILLs every child still alive (last resort; the graceful paths run first). */
export function killAllChildren(): void {
  for (const child of live) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

process.once('exit', killAllChildren);

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));

/** One load-generator process; `request` sends a command and resolves with its reply. */
export class Worker {
  private counter = 0;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  onProgress: ((min: number) => void) | null = null;
  lastProgress = -1;
  readonly ready: Promise<void>;

  private constructor(readonly child: ChildProcess) {
    let readyResolve!: () => void;
    this.ready = new Promise((resolve) => (readyResolve = resolve));
    child.on('message', (event: WorkerEvent) => {
      if (event.type === 'ready') readyResolve();
      else if (event.type === 'progress') {
        this.lastProgress = event.min;
        this.onProgress?.(event.min);
      } else {
        const waiter = this.pending.get(event.id);
        this.pending.delete(event.id);
        if (event.ok) waiter?.resolve(event.value);
        else waiter?.reject(new Error(`load generator ${child.pid}: ${event.error}`));
      }
    });
    child.once('exit', (code, signal) => {
      for (const w of this.pending.values()) w.reject(new Error(`load generator ${child.pid} exited (${code ?? signal})`));
      this.pending.clear();
    });
  }

  static async start(): Promise<Worker> {
    const worker = new Worker(track(fork(here('./load-worker.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })));
    await worker.ready;
    return worker;
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Sends a command; rejects if no reply comes within `timeoutMs` (a generator stuck on a dead broker connection). */
  request<T>(cmd: WorkerCommand, timeoutMs = cmd.op === 'connect' || cmd.op === 'churn' ? 600_000 : 60_000): Promise<T> {
    const id = ++this.counter;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`load generator ${this.child.pid} did not answer "${cmd.op}" within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      this.pending.set(id, { resolve: (v) => (clearTimeout(timer), (resolve as (v: unknown) => void)(v)), reject: (e) => (clearTimeout(timer), reject(e)) });
      if (!this.child.connected) return this.pending.get(id)!.reject(new Error(`load generator ${this.child.pid} is gone`));
      this.child.send({ id, cmd });
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    await this.request({ op: 'close' }, 20_000).catch(() => undefined);
    if (this.child.connected) this.child.disconnect();
    if (!(await exited(this.child, 5000))) {
      this.child.kill('SIGKILL');
      await exited(this.child, 5000);
    }
  }
}

/** The publisher process. */
export class Publisher {
  private constructor(readonly child: ChildProcess) {}

  static async start(): Promise<Publisher> {
    const child = track(fork(here('./publisher.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
    await new Promise<void>((resolve) => child.once('message', () => resolve()));
    return new Publisher(child);
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Runs one plan to completion. `onStarted` is called once the first message is about to go. */
  run(plan: PublishPlan, onStarted?: () => void): Promise<PublishResult> {
    return new Promise((resolve, reject) => {
      // A publisher that neither finishes nor says why (stuck on a dead connection) is given up on.
      const timer = setTimeout(() => finish(new Error('publisher did not finish in time')), plan.warmupMs + plan.measureMs + 60_000);
      const onExit = (code: number | null, signal: string | null) => finish(new Error(`publisher exited (${code ?? signal})`));
      const finish = (err: Error | null, result?: PublishResult) => {
        clearTimeout(timer);
        this.child.off('message', onMessage);
        this.child.off('exit', onExit);
        if (err) reject(err);
        else resolve(result!);
      };
      const onMessage = (event: PublisherEvent) => {
        if (event.type === 'started') onStarted?.();
        else if (event.type === 'done') finish(null, event.result);
        else if (event.type === 'error') finish(new Error(`publisher: ${event.error}`));
      };
      this.child.on('message', onMessage);
      this.child.once('exit', onExit);
      this.child.send({ op: 'start', plan });
    });
  }

  credit(upTo: number): void {
    if (this.child.connected) this.child.send({ op: 'credit', upTo });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    if (this.child.connected) this.child.disconnect();
    if (!(await exited(this.child, 5000))) {
      this.child.kill('SIGKILL');
      await exited(this.child, 5000);
    }
  }
}

/** Settings every gateway the bench measures runs with, its own and the cluster rig's (besides exchange, id, ports and broker). */
export const BENCH_GATEWAY_ENV: Readonly<Record<string, string>> = {
  TOPICGATE_INSECURE_NO_AUTH: '1',
  TOPICGATE_LOG_LEVEL: 'warn',
  // The bench's own limits are not what it measures.
  TOPICGATE_SUBSCRIBE_RATE: '1000000',
  TOPICGATE_MAX_SUBSCRIPTIONS: '1000',
};

export interface GatewayOptions {
  cliPath: string;
  amqpUrl: string;
  exchange: string;
  gatewayId: string;
  /** Directory for --cpu-prof output; unset: no profiling. */
  cpuProfileDir?: string;
  /** Extra node flags for the gateway process (tuning experiments, e.g. `--max-semi-space-size=64`). */
  nodeArgs?: readonly string[];
  /** Where the gateway's output (its logs: pino JSON on stderr, anything else on stdout) goes. */
  logFile: string;
  /** Added to (or, with `undefined`, removed from) the gateway's environment. */
  extraEnv?: Record<string, string | undefined>;
}

/**
 * `node server/dist/cli.js serve` as a child process. A preload module
 * (gateway-preload.js, bench code, not server code) makes it exit when the
 * bench dies and answers memory questions over IPC.
 */
export class GatewayProcess {
  private constructor(
    readonly child: ChildProcess,
    readonly url: string,
    /** Where metrics are served; a gateway built before they had a port of their own serves them at `${url}/metrics`. */
    readonly metricsUrl: string,
    readonly options: GatewayOptions,
  ) {}

  static async start(options: GatewayOptions): Promise<GatewayProcess> {
    const port = await freePort();
    const metricsPort = await freePort();
    const nodeArgs = ['--import', pathToFileURL(here('./gateway-preload.js')).href, ...(options.nodeArgs ?? [])];
    if (options.cpuProfileDir) {
      mkdirSync(options.cpuProfileDir, { recursive: true });
      nodeArgs.push('--cpu-prof', '--cpu-prof-dir', options.cpuProfileDir);
    }
    const log = createWriteStream(options.logFile, { flags: 'a' });
    const child = track(
      spawn(process.execPath, [...nodeArgs, options.cliPath, 'serve'], {
        env: {
          ...process.env,
          TOPICGATE_AMQP_URL: options.amqpUrl,
          TOPICGATE_EXCHANGE: options.exchange,
          TOPICGATE_GATEWAY_ID: options.gatewayId,
          TOPICGATE_PORT: String(port),
          TOPICGATE_METRICS_PORT: String(metricsPort),
          TOPICGATE_HOST: '127.0.0.1',
          ...BENCH_GATEWAY_ENV,
          ...options.extraEnv,
        },
        stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      }),
    );
    child.stdout!.pipe(log, { end: false });
    child.stderr!.pipe(log);
    const gateway = new GatewayProcess(child, `http://127.0.0.1:${port}`, `http://127.0.0.1:${metricsPort}/metrics`, options);
    await gateway.ready();
    return gateway;
  }

  /** Resolves once /readyz answers 200 (the gateway is connected to the broker). */
  async ready(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.child.exitCode !== null) throw new Error(`the gateway exited (${this.child.exitCode}); see ${this.options.logFile}`);
      try {
        const res = await fetch(`${this.url}/readyz`);
        if (res.ok) return;
      } catch {
        /* not listening yet */
      }
      if (Date.now() > deadline) throw new Error(`the gateway was not ready within ${timeoutMs / 1000} s; see ${this.options.logFile}`);
      await sleep(100);
    }
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** process.memoryUsage() inside the gateway. */
  memory(): Promise<NodeJS.MemoryUsage> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the gateway did not answer a memory request')), 5000);
      this.child.once('message', (m: { memory: NodeJS.MemoryUsage }) => (clearTimeout(timer), resolve(m.memory)));
      this.child.send('memory');
    });
  }

  /** Asks for a full GC first (the preload exposes one), so heap numbers are live objects only. */
  gc(): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, 5000);
      this.child.once('message', () => (clearTimeout(timer), resolve()));
      this.child.send('gc');
    });
  }

  async metrics(): Promise<Record<string, number>> {
    const res = await fetch(this.metricsUrl).catch(() => fetch(`${this.url}/metrics`));
    const text = await res.text();
    const out: Record<string, number> = {};
    for (const line of text.split('\n')) {
      const m = /^(topicgate_[a-z_]+)(?:\{[^}]*\})? ([0-9.e+-]+)$/.exec(line);
      if (m) out[m[1]!] = (out[m[1]!] ?? 0) + Number(m[2]);
    }
    return out;
  }

  /** SIGTERM (graceful: unsubscribes, deletes queues, writes the CPU profile), SIGKILL after 20 s. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    if (!(await exited(this.child, 20_000))) {
      this.child.kill('SIGKILL');
      await exited(this.child, 5000);
    }
  }
}

/** Resolves true once `child` has exited, false if it has not within `timeoutMs`. */
export function exited(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    child.once('exit', () => (clearTimeout(timer), resolve(true)));
  });
}
