/**
 * `npm run bench`: preflight (broker, Web-STOMP, file descriptors), the
 * scenarios, cleanup (exchange, queues, connections, child processes) and
 * the report in bench/results/. See bench/README.md.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { sleep } from './clock.js';
import { Broker, redact } from './broker.js';
import { Bench, RAISE_BROKER_FDS } from './harness.js';
import { readOptions, type BenchOptions, type ScenarioName } from './options.js';
import { findBrokerPid, openFileLimit } from './proc.js';
import { killAllChildren } from './processes.js';
import { repoRelative } from './paths.js';
import { rawResults, renderReport } from './report.js';
import { churn } from './scenarios/churn.js';
import { cluster } from './scenarios/cluster.js';
import { fanout } from './scenarios/fanout.js';
import { idle } from './scenarios/idle.js';
import { logtail } from './scenarios/logtail.js';
import { profile } from './scenarios/profile.js';

const SCENARIOS: Record<ScenarioName, (bench: Bench) => Promise<void>> = { fanout, churn, idle, logtail, profile, cluster };

async function preflight(bench: Bench): Promise<void> {
  const { options, broker } = bench;
  await broker.requireReachable((l) => bench.log(l));
  bench.brokerPid = findBrokerPid() || (await broker.pid());
  if (!existsSync(options.cliPath)) throw new Error(`no gateway build at ${options.cliPath}; run \`npx tsc -b server\` (npm run bench does) or set BENCH_GATEWAY_CLI`);
  // Web-STOMP runs only in fan-out, idle and log tail; a run of the cluster scenario alone leaves the broker's plugins as they are.
  const stompRuns = options.kinds.includes('stomp') && options.scenarios.some((s) => s === 'fanout' || s === 'idle' || s === 'logtail');
  if (stompRuns) await broker.ensureWebStomp((l) => bench.log(l));
  if (options.kinds.includes('mqtt') && options.scenarios.includes('fanout')) await broker.ensureWebMqtt(options.mqttUrl, (l) => bench.log(l));

  // File descriptors: the idle scenario holds thousands of sockets on the broker (Web-STOMP), the gateway and the generators.
  const biggest = Math.max(
    options.scenarios.includes('idle') ? Math.max(...options.idleClients) : Math.max(...options.fanoutClients, options.logtail.clients),
    ...(options.scenarios.includes('cluster') ? [...options.cluster.clients, options.cluster.idleClients] : []),
  );
  const info = await broker.nodeInfo();
  if (stompRuns && info.fd_total - info.fd_used < biggest + 200) {
    bench.warn(
      `RabbitMQ's open-file limit is ${info.fd_total} (${info.fd_used} in use); ${biggest} Web-STOMP clients need ${biggest + 200}. ` +
        `Web-STOMP runs that do not fit are not run (idle measures fewer clients). ${RAISE_BROKER_FDS}`,
    );
  }
  const own = openFileLimit('self');
  if (own < biggest + 500) {
    bench.warn(`this shell's open-file limit is ${own}; the gateway needs one per connection (${biggest}). Run \`ulimit -n 20000\` first, or the gateway will refuse connections (EMFILE).`);
  }

  // Earlier runs that died hard may have left their exchange behind (queues are exclusive or auto-delete and went with their connections).
  for (const name of await broker.staleExchanges('topicgate-bench.')) {
    bench.log(`deleting ${name}, left behind by an earlier run`);
    await broker.deleteExchange(name).catch(() => undefined);
  }
  await broker.declareExchange(bench.exchange);
}

/** Deletes what this run declared and checks the broker holds nothing of ours. */
async function cleanup(bench: Bench): Promise<void> {
  await bench.runCleanups(); // the cluster rig, if a scenario started one
  killAllChildren();
  await bench.unwatchBroker();
  const { broker } = bench;
  await broker.deleteExchange(bench.exchange).catch((err: Error) => bench.warn(`could not delete exchange ${bench.exchange}: ${err.message}`));
  // The gateways declare a durable control exchange beside it (`<exchange>.control`, server/src/control.ts).
  await broker.deleteExchange(`${bench.exchange}.control`).catch(() => undefined);
  const gatewayQueues = `topicgate.${bench.runId}-`;
  let queues: string[] = [];
  let conns: string[] = [];
  for (let i = 0; i < 20; i++) {
    queues = [...(await broker.queueNames(bench.prefix)), ...(await broker.queueNames(gatewayQueues))];
    conns = await broker.connectionNames([bench.prefix, `topicgate ${bench.runId}-`, 'bench publisher', 'bench admin']);
    if (queues.length === 0 && conns.length === 0) break;
    await sleep(500);
  }
  for (const q of queues) await broker.deleteQueue(q).catch(() => undefined);
  const sessions = await bench.deleteMqttSessions().catch(() => 0);
  if (sessions) bench.log(`cleanup: deleted ${sessions} Web-MQTT session queue(s) of this run`);
  if (queues.length || conns.length) bench.warn(`after cleanup the broker still had ${queues.length} queue(s) and ${conns.length} connection(s) of this run (${[...queues, ...conns].slice(0, 3).join(', ')}); queues were deleted`);
  else bench.log('cleanup: no queue, exchange, connection or child process of this run is left');
}

function describeRun(options: BenchOptions, bench: Bench): Record<string, string> {
  const rabbit = (() => {
    try {
      return /RabbitMQ version: (\S+)/.exec(execFileSync('rabbitmqctl', ['-q', 'status'], { encoding: 'utf8', timeout: 30_000 }))?.[1] ?? '?';
    } catch {
      return '?';
    }
  })();
  const rev = (() => {
    try {
      const dir = new URL('.', `file://${options.cliPath}`).pathname;
      return execFileSync('git', ['-C', dir, 'describe', '--always', '--dirty'], { encoding: 'utf8' }).trim();
    } catch {
      return '?';
    }
  })();
  return {
    date: new Date().toISOString(),
    'run id': bench.runId,
    'gateway build': `${repoRelative(options.cliPath)} (git ${rev})${options.label ? ` — ${options.label}` : ''}`,
    machine: `${cpus().length} × ${cpus()[0]?.model ?? '?'}, Node ${process.version}, RabbitMQ ${rabbit} at ${redact(options.amqpUrl)}`,
    settings: `${options.quick ? 'quick; ' : ''}scenarios ${options.scenarios.join(', ')}; receivers ${options.kinds.join(', ')}; ${options.gatewayProcesses} gateway process${options.gatewayProcesses === 1 ? '' : 'es'}${options.gatewayNodeArgs.length ? ` (node ${options.gatewayNodeArgs.join(' ')})` : ''}; ${options.workers} load-generator processes; warm-up ${options.warmupMs} ms + window ${options.measureMs} ms per fan-out run; ${options.bodyBytes}-byte bodies; raw amqplib consumers on ${options.rawSharedChannel ? 'one shared channel per generator process' : 'one channel each'}; flat-out window ${options.flatWindow} deliveries${options.kinds.includes('resumable') ? `; resumable: gateways with TOPICGATE_RESUME_WINDOW=${options.resumeWindow}, one \`received\` in flight per socket` : ''}${options.kinds.includes('mqtt') ? `; Web-MQTT: clean_session=false, QoS 1 subscriptions, every PUBLISH PUBACKed, published to amq.topic` : ''}${options.scenarios.includes('cluster') ? `; cluster: scripts/cluster.sh rig in ${options.cluster.dir}, ${options.cluster.clients.join(', ')} clients through HAProxy :8180 (websocket-only), publisher on tgc${options.cluster.publishNode}@localhost, ${options.cluster.idleClients} idle subscriptions for memory` : ''}`,
  };
}

async function main(): Promise<number> {
  const options = readOptions(process.argv.slice(2), process.env);
  const broker = new Broker({ amqpUrl: options.amqpUrl, managementUrl: options.managementUrl, stompUrl: options.stompUrl, user: decodeURIComponent(new URL(options.amqpUrl).username || 'guest'), password: decodeURIComponent(new URL(options.amqpUrl).password || 'guest') });
  const bench = new Bench(options, broker);
  const started = Date.now();
  let interrupted = false;
  const onSignal = (signal: string) => {
    if (interrupted) process.exit(130);
    interrupted = true;
    bench.warn(`${signal}: stopping, cleaning up`);
    void cleanup(bench).finally(() => process.exit(130));
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));

  bench.log(`run ${bench.runId}: ${options.scenarios.join(', ')} (${options.quick ? 'quick' : 'full'})`);
  let failed = false;
  try {
    await preflight(bench);
    await bench.watchBroker();
    for (const name of options.scenarios) {
      try {
        await SCENARIOS[name](bench);
      } catch (err) {
        failed = true;
        bench.record({ scenario: name, error: (err as Error).message });
      }
    }
  } catch (err) {
    failed = true;
    bench.warn((err as Error).message);
  } finally {
    await cleanup(bench).catch((err: Error) => bench.warn(`cleanup failed: ${err.message}`));
  }

  const meta = describeRun(options, bench);
  meta.duration = `${Math.round((Date.now() - started) / 1000)} s`;
  const report = renderReport(bench.rows, meta, bench.warnings);
  mkdirSync(options.resultsDir, { recursive: true });
  const dated = `${options.resultsDir}/${bench.runId}.md`;
  writeFileSync(dated, report);
  writeFileSync(`${options.resultsDir}/latest.md`, report);
  writeFileSync(`${options.resultsDir}/${bench.runId}.raw.json`, rawResults(bench.rows, meta, bench.warnings));
  bench.log(`report: ${options.resultsDir}/latest.md (and ${dated})`);
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`[bench] ${(err as Error).stack ?? String(err)}\n`);
    killAllChildren();
    process.exit(1);
  },
);
