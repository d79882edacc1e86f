/**
 * `npm run soak`: one gateway (with real JWT auth) under churn for a while,
 * proving that no message is lost without a resync. See bench/README.md.
 *
 * Phases: preflight (broker, management API, exchange) → gateway → clients
 * connect and subscribe in load workers → publisher starts → churn, cuts,
 * refreshes and pauses while sampling every few seconds → the publisher
 * stops, clients drain and are judged → queues checked → gateway stopped
 * (its queues must go) → report. Whatever happens, children are killed and
 * the exchange deleted.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { relative } from 'node:path';
import amqp, { type ChannelModel } from 'amqplib';
import { nowUs, sleep } from '../clock.js';
import { Broker } from '../broker.js';
import { findBrokerPid } from '../proc.js';
import { GatewayProcess, killAllChildren } from '../processes.js';
import { Chaos } from './chaos.js';
import type { LossRecord, Problem } from './checker.js';
import { GatewayLog } from './gateway-log.js';
import { KeySpace, SLOW_CLIENT_PATTERNS, expectedFanout } from './keys.js';
import type { DrainStatus, InitResult, PublisherCommand, PublisherFinal, PublisherProgress, WorkerCommand, WorkerConfig, WorkerResult } from './messages.js';
import { readOptions, type SoakOptions } from './options.js';
import { crossCheck, growth, judge, render, type Outcome, type QueueCheck } from './report.js';
import { RpcChild } from './rpc.js';
import { Sampler, describeSample, type Sample } from './sampler.js';
import { sumCounters } from './totals.js';

const log = (line: string) => process.stderr.write(`[soak] ${line}\n`);

/** Everything the run started, so cleanup can find it whatever stage failed. */
interface RunState {
  options: SoakOptions;
  runId: string;
  exchange: string;
  gatewayId: string;
  broker: Broker;
  gateway: GatewayProcess | null;
  workers: Array<RpcChild<WorkerCommand>>;
  publisher: RpcChild<PublisherCommand> | null;
  chaos: Chaos | null;
  sentinel: ChannelModel | null;
  brokerOutages: number;
  warnings: string[];
}

function warn(state: RunState, line: string): void {
  state.warnings.push(line);
  log(`WARNING: ${line}`);
}

/**
 * One idle AMQP connection for the whole run. If it drops, someone restarted
 * or stopped the broker (other test suites share it): counted, and the
 * report says which judgements that affects.
 */
async function watchBroker(state: RunState): Promise<void> {
  for (;;) {
    try {
      const conn = await amqp.connect(state.options.amqpUrl, { clientProperties: { connection_name: `topicgate-soak.${state.runId}.sentinel` } });
      conn.on('error', () => undefined);
      conn.once('close', () => {
        if (state.sentinel !== conn) return;
        state.sentinel = null;
        state.brokerOutages++;
        warn(state, 'lost the sentinel connection: the broker was restarted or stopped (not by the soak)');
        void watchBroker(state);
      });
      state.sentinel = conn;
      return;
    } catch {
      await sleep(1000);
    }
  }
}

/** Splits the subscriptions over the clients; client 0 is the slow one with its fixed patterns. */
function planClients(o: SoakOptions): Array<{ id: number; subscriptions: number; slow: boolean }> {
  const rest = o.subscriptions - SLOW_CLIENT_PATTERNS.length;
  const others = o.clients - 1;
  return Array.from({ length: o.clients }, (_, id) =>
    id === 0 ? { id, subscriptions: SLOW_CLIENT_PATTERNS.length, slow: true } : { id, subscriptions: Math.floor(rest / others) + (id - 1 < rest % others ? 1 : 0), slow: false },
  );
}

/** How long the workers' tokens live: the whole soak and an hour more, so none needs refreshing. */
function tokenTtlSeconds(minutes: number): number {
  return Math.ceil(minutes * 60 + 3600);
}

async function startWorkers(state: RunState, gateway: GatewayProcess, secret: string): Promise<InitResult> {
  const { options: o } = state;
  const plans = planClients(o);
  const results: InitResult[] = [];
  for (let w = 0; w < o.workers; w++) state.workers.push(await RpcChild.fork<WorkerCommand>('./worker.js', `soak worker ${w}`));
  await Promise.all(
    state.workers.map(async (worker, w) => {
      const config: WorkerConfig = {
        gatewayUrl: gateway.url,
        gatewayId: state.gatewayId,
        jwtSecret: secret,
        tokenTtlSeconds: tokenTtlSeconds(o.minutes),
        streams: o.streams,
        events: o.events,
        clients: plans.filter((p) => p.id % o.workers === w),
        churnPerSecond: o.churn / o.workers,
        seed: 1000 + w,
      };
      results.push(await worker.request<InitResult>({ op: 'init', config }, 180_000));
    }),
  );
  return {
    connected: results.reduce((s, r) => s + r.connected, 0),
    subscribed: results.reduce((s, r) => s + r.subscribed, 0),
    failures: results.flatMap((r) => r.failures),
  };
}

/** Waits until every live subscription has what was published (or nothing moved for 5 s, at most 60 s). */
async function drain(state: RunState, gEnd: number): Promise<number> {
  const deadline = Date.now() + 60_000;
  let last = -1;
  let lastMove = Date.now();
  for (;;) {
    const status = await Promise.all(state.workers.map((w) => w.request<DrainStatus>({ op: 'drain', gEnd })));
    const behind = status.reduce((s, x) => s + x.behind, 0);
    const deliveries = status.reduce((s, x) => s + x.deliveries, 0);
    if (deliveries !== last) (last = deliveries), (lastMove = Date.now());
    if (behind === 0 || Date.now() - lastMove > 5000 || Date.now() > deadline) return behind;
    await sleep(250);
  }
}

/** Polls (≤ 20 s) until the gateway's queues on the broker are exactly the live subscriptions' queues. */
async function checkQueues(state: RunState, live: string[]): Promise<QueueCheck> {
  const prefix = `topicgate.${state.gatewayId}.`;
  const want = new Set(live);
  let onBroker: string[] = [];
  for (let i = 0; i < 40; i++) {
    onBroker = await state.broker.queueNames(prefix);
    if (onBroker.length === want.size && onBroker.every((q) => want.has(q))) break;
    await sleep(500);
  }
  const have = new Set(onBroker);
  return { live: want.size, onBroker: onBroker.length, missing: live.filter((q) => !have.has(q)), orphans: onBroker.filter((q) => !want.has(q)), afterStop: null };
}

async function queuesAfterStop(state: RunState): Promise<string[]> {
  const prefix = `topicgate.${state.gatewayId}.`;
  let left: string[] = [];
  for (let i = 0; i < 20; i++) {
    left = await state.broker.queueNames(prefix);
    if (left.length === 0) break;
    await sleep(500);
  }
  return left;
}

/** Kills what is left, deletes the exchange and any queue of this run. Safe to call twice. */
async function cleanup(state: RunState): Promise<void> {
  state.chaos?.stop();
  await Promise.all(state.workers.map((w) => w.stop().catch(() => undefined)));
  await state.publisher?.stop().catch(() => undefined);
  await state.gateway?.stop().catch(() => undefined);
  killAllChildren();
  const sentinel = state.sentinel;
  state.sentinel = null;
  await sentinel?.close().catch(() => undefined);
  await state.broker.deleteExchange(state.exchange).catch((err: Error) => warn(state, `could not delete exchange ${state.exchange}: ${err.message}`));
  const left = await state.broker.queueNames(`topicgate.${state.gatewayId}.`).catch(() => [] as string[]);
  for (const q of left) await state.broker.deleteQueue(q).catch(() => undefined);
  if (left.length) warn(state, `cleanup deleted ${left.length} queue(s) the gateway left behind`);
}

async function main(): Promise<number> {
  const options = readOptions(process.argv.slice(2), process.env);
  const runId = `${new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '')}-${randomBytes(3).toString('hex')}`;
  const url = new URL(options.amqpUrl);
  const broker = new Broker({
    amqpUrl: options.amqpUrl,
    managementUrl: options.managementUrl,
    stompUrl: '',
    user: decodeURIComponent(url.username || 'guest'),
    password: decodeURIComponent(url.password || 'guest'),
  });
  const state: RunState = {
    options,
    runId,
    exchange: `topicgate-soak.${runId}.exchange`,
    gatewayId: `soak-${runId}`,
    broker,
    gateway: null,
    workers: [],
    publisher: null,
    chaos: null,
    sentinel: null,
    brokerOutages: 0,
    warnings: [],
  };
  let interrupted = false;
  const onSignal = (signal: string) => {
    if (interrupted) process.exit(130);
    interrupted = true;
    log(`${signal}: stopping and cleaning up`);
    void cleanup(state).finally(() => process.exit(130));
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));

  mkdirSync(`${options.resultsDir}/logs`, { recursive: true });
  const reportFile = `${options.resultsDir}/soak-${runId}.json`;
  const logFile = `${options.resultsDir}/logs/soak-${runId}-gateway.log`;
  const gatewayLog = new GatewayLog(logFile);
  const space = new KeySpace(options.streams, options.events);
  const started = Date.now();
  let publishStartedAt = Date.now();
  let churnEndedAt: number | null = null;
  const clockOffsetUs = Date.now() * 1000 - nowUs();
  const checkpoints: Array<[number, number]> = [];
  let progress: PublisherProgress | null = null;
  let sampler: Sampler | null = null;
  let init: InitResult | null = null;
  let final: PublisherFinal | null = null;
  let results: WorkerResult[] = [];
  let queues: QueueCheck | null = null;
  let endSample: Sample | null = null;
  let fatal: string | null = null;

  log(`run ${runId}: ${options.minutes} min, ${options.clients} clients, ${options.subscriptions} subscriptions, ${options.rate} messages/s, ${options.workers} workers`);
  try {
    // Preflight: the broker and its management API (enabled if off), the build, a fresh exchange.
    await broker.requireReachable(log);
    if (!existsSync(options.cliPath)) throw new Error(`no gateway build at ${options.cliPath}; run \`npx tsc -b server\` (npm run soak does) or set BENCH_GATEWAY_CLI`);
    for (const name of await broker.staleExchanges('topicgate-soak.')) {
      log(`deleting ${name}, left behind by an earlier soak`);
      await broker.deleteExchange(name).catch(() => undefined);
    }
    await broker.declareExchange(state.exchange);
    await watchBroker(state);

    const secret = randomBytes(32).toString('hex');
    const gateway = (state.gateway = await GatewayProcess.start({
      cliPath: options.cliPath,
      amqpUrl: options.amqpUrl,
      exchange: state.exchange,
      gatewayId: state.gatewayId,
      logFile,
      extraEnv: {
        // Real authentication, and the gateway's own limits: the bench's relaxations are not wanted here.
        TOPICGATE_INSECURE_NO_AUTH: undefined,
        TOPICGATE_SUBSCRIBE_RATE: undefined,
        TOPICGATE_MAX_SUBSCRIPTIONS: undefined,
        TOPICGATE_JWT_SECRET: secret,
        // The workers' tokens live the whole soak plus an hour: a soak of a day or more exceeds the default maximum (24h).
        TOPICGATE_JWT_MAX_TTL: String(tokenTtlSeconds(options.minutes)),
        TOPICGATE_LOG_LEVEL: options.gatewayLogLevel,
        TOPICGATE_CLIENT_BUFFER_BYTES: options.clientBufferBytes === undefined ? undefined : String(options.clientBufferBytes),
      },
    }));
    log(`gateway ${state.gatewayId} ready at ${gateway.url} (pid ${gateway.pid}); log: ${relative(options.root, logFile)}`);

    init = await startWorkers(state, gateway, secret);
    log(`${init.connected} clients connected, ${init.subscribed} subscriptions acked${init.failures.length ? ` (${init.failures.join('; ')})` : ''}`);
    if (init.subscribed === 0) throw new Error('no subscription was acked');

    const publisher = (state.publisher = await RpcChild.fork<PublisherCommand>('./publisher.js', 'soak publisher'));
    publisher.onEvent((event) => {
      progress = event as PublisherProgress;
      checkpoints.push(...progress.checkpoints);
    });
    publishStartedAt = Date.now();
    await publisher.request({
      op: 'start',
      plan: { amqpUrl: options.amqpUrl, exchange: state.exchange, streams: options.streams, events: options.events, rate: options.rate, bodyBytes: options.bodyBytes, connectionName: `topicgate-soak.${runId}.publisher` },
    });
    await Promise.all(state.workers.map((w) => w.request({ op: 'start' })));
    const slowOwner = state.workers[0]!;
    const others = planClients(options).filter((p) => !p.slow).map((p) => p.id);
    state.chaos = new Chaos(options, others, 0, (id) => state.workers[id % options.workers] ?? slowOwner, publishStartedAt, log);
    state.chaos.start();

    sampler = new Sampler({
      gateway,
      broker,
      workers: state.workers,
      publisherPid: () => publisher.pid,
      brokerPid: findBrokerPid() || (await broker.pid().catch(() => 0)),
      log: gatewayLog,
      publisher: () => progress,
      startedAt: publishStartedAt,
    });
    const endAt = publishStartedAt + options.minutes * 60_000;
    while (Date.now() < endAt && !interrupted) {
      await sleep(Math.min(options.sampleSeconds * 1000, Math.max(0, endAt - Date.now())));
      if (gateway.child.exitCode !== null || gateway.child.signalCode !== null) throw new Error(`the gateway exited (${gateway.child.exitCode ?? gateway.child.signalCode}); see ${relative(options.root, logFile)}`);
      log(describeSample(await sampler.take()));
    }

    // The end: no more churn; the publisher stops; every live subscription must then get everything published.
    churnEndedAt = Date.now();
    log('stopping churn and the publisher; draining');
    state.chaos.stop();
    const stillPending = await Promise.all(state.workers.map((w) => w.request<number>({ op: 'quiesce' }, 60_000)));
    if (stillPending.some((n) => n > 0)) warn(state, `${stillPending.reduce((a, b) => a + b, 0)} client requests were still unanswered 30 s after churn stopped`);
    final = await publisher.request<PublisherFinal>({ op: 'stop' }, 60_000);
    checkpoints.push(...final.checkpoints);
    const behind = await drain(state, final.lastG);
    if (behind > 0) log(`${behind} subscriptions still missing messages after draining; they are judged as they are`);
    endSample = await sampler.take();
    log(describeSample(endSample));
    results = await Promise.all(state.workers.map((w) => w.request<WorkerResult>({ op: 'collect', gEnd: final!.lastG }, 120_000)));
    queues = await checkQueues(
      state,
      results.flatMap((r) => r.liveQueues),
    );

    // Graceful stop with clients still subscribed: the gateway must delete every queue.
    log('stopping the gateway (SIGTERM)');
    await gateway.stop();
    queues.afterStop = await queuesAfterStop(state);
    await Promise.all(state.workers.map((w) => w.request({ op: 'close' }, 20_000).catch(() => undefined)));
  } catch (err) {
    fatal = (err as Error).message;
    log(`FATAL: ${(err as Error).stack ?? fatal}`);
  } finally {
    await cleanup(state).catch((err: Error) => warn(state, `cleanup failed: ${err.message}`));
  }

  // The verdict.
  const losses: LossRecord[] = results.flatMap((r) => r.losses);
  const problems: Problem[] = results.flatMap((r) => r.problems);
  const counters = results.length ? sumCounters(results.map((r) => r.counters)) : (sampler?.counters ?? null);
  const rel = (p: string) => relative(options.root, p);
  const outcome: Outcome = {
    runId,
    startedAt: new Date(started).toISOString(),
    churnS: Math.round(((churnEndedAt ?? Date.now()) - publishStartedAt) / 1000),
    totalS: Math.round((Date.now() - started) / 1000),
    options: { ...options, cliPath: rel(options.cliPath), root: '.', resultsDir: rel(options.resultsDir) },
    gatewayId: state.gatewayId,
    exchange: state.exchange,
    files: { report: rel(reportFile), gatewayLog: rel(logFile) },
    expectedFanout: expectedFanout(space, options.subscriptions),
    init,
    publisher: final,
    counters,
    losses,
    lossesOmitted: results.reduce((s, r) => s + r.lossesOmitted, 0),
    problems,
    samples: sampler?.samples ?? [],
    endSample,
    queues,
    log: gatewayLog.scan(),
    latency: quantiles(sampler?.latency),
    slowLatency: quantiles(sampler?.slowLatency),
    brokerOutages: state.brokerOutages,
    chaos: { events: state.chaos?.events ?? [], errors: state.chaos?.errors ?? 0 },
    warnings: state.warnings,
    fatal,
  };
  const checks = losses.map((loss) =>
    crossCheck(loss, {
      gatewayId: state.gatewayId,
      publisher: final,
      checkpoints,
      clockOffsetUs,
      queueSightings: sampler?.queueSightings ?? new Map(),
      log: outcome.log,
      keySpaceSize: space.size,
    }),
  );
  const judgements = judge(outcome, checks);
  const heap = growth(outcome, (s) => s.heapAfterGcMiB);
  const json = JSON.stringify({ ...outcome, judgements, heapAfterGcGrowth: heap, lossChecks: checks.slice(0, 1000).map(({ loss: _l, ...rest }, i) => ({ loss: i, ...rest })) }, null, 2);
  // Paths relative to the repository, also those inside messages (a log file named in an error).
  writeFileSync(reportFile, json.replaceAll(options.root, ''));
  process.stdout.write('\n' + render(outcome, checks, judgements, heap));
  return judgements.some((x) => x.verdict === 'FAIL') ? 1 : 0;
}

function quantiles(h: Sampler['latency'] | undefined): Outcome['latency'] {
  const round = (x: number | null) => (x === null ? null : Math.round(x * 100) / 100);
  if (!h || h.total === 0) return { p50Ms: null, p99Ms: null, maxMs: null };
  return { p50Ms: round(h.quantileMs(0.5)), p99Ms: round(h.quantileMs(0.99)), maxMs: round(h.max / 1000) };
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    log((err as Error).stack ?? String(err));
    killAllChildren();
    process.exit(1);
  },
);
