/**
 * What a run does: which scenarios, how long each window is, how many load
 * generators. Everything can be set by environment variable; `--quick` and
 * `--scenarios a,b` are the flags people actually type.
 */
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import type { ClientKind } from './messages.js';

export const ALL_KINDS: readonly ClientKind[] = ['gateway', 'resumable', 'amqp', 'amqp-held', 'stomp', 'mqtt'];
export const ALL_SCENARIOS = ['fanout', 'churn', 'idle', 'logtail', 'profile', 'cluster'] as const;
export type ScenarioName = (typeof ALL_SCENARIOS)[number];
/** `profile` is opt-in: it restarts the gateway under --cpu-prof; so is `cluster`: it needs root, haproxy and a minute to start the rig. */
const DEFAULT_SCENARIOS: ScenarioName[] = ['fanout', 'churn', 'idle', 'logtail'];

export interface BenchOptions {
  quick: boolean;
  scenarios: ScenarioName[];
  kinds: ClientKind[];
  fanoutClients: number[];
  idleClients: number[];
  profileClients: number[];
  /** Paced fan-out target, deliveries per second (summed over clients). */
  pacedDeliveries: number;
  warmupMs: number;
  measureMs: number;
  /** Load-generator processes. */
  workers: number;
  /** Gateway processes in fan-out and log-tail runs, clients spread over them (a host running one per core). */
  gatewayProcesses: number;
  /** Extra node flags for gateway processes. */
  gatewayNodeArgs: string[];
  /** Deliveries in flight in flat-out runs (published but not yet received by the slowest client). */
  flatWindow: number;
  /** Fan-out: each (clients, mode) runs every kind this many times in turn; the report takes each kind's median. */
  rounds: number;
  bodyBytes: number;
  /** Raw amqplib consumers share one channel per generator process instead of one channel each. */
  rawSharedChannel: boolean;
  /** Before each run, wait until the machine is below this % of one core busy ... */
  quietBusyPct: number;
  /** ... for at most this long. */
  quietMaxMs: number;
  churnLoops: number;
  churnMs: number;
  logtail: { builds: number; linesPerSecond: number; clients: number; logsPerClient: number; warmupMs: number; measureMs: number };
  amqpUrl: string;
  managementUrl: string;
  stompUrl: string;
  /** Web-MQTT endpoint (rabbitmq_web_mqtt). */
  mqttUrl: string;
  /** TOPICGATE_RESUME_WINDOW (seconds) of the gateways the `resumable` kind runs against. */
  resumeWindow: number;
  cliPath: string;
  resultsDir: string;
  /** Label for this build in the report (e.g. "worktree: raw splice"). */
  label: string;
  /** The cluster scenario (issue 13): scripts/cluster.sh's rig beside one gateway on the bench's broker. */
  cluster: {
    /** Fan-out client counts, each run through HAProxy and through the single gateway. */
    clients: number[];
    /** Idle subscriptions whose broker memory is measured on both. */
    idleClients: number;
    /** TOPICGATE_CLUSTER_DIR of the bench's rig. */
    dir: string;
    /** The rig node (1-3) the publisher connects to. */
    publishNode: number;
  };
}

const numbers = (text: string | undefined, fallback: number[]) => (text ? text.split(',').map((s) => Number(s.trim())).filter((n) => n > 0) : fallback);
const num = (text: string | undefined, fallback: number) => (text && Number(text) > 0 ? Number(text) : fallback);

export const USAGE = `npm run bench [-- --quick] [-- --scenarios fanout,churn,idle,logtail,profile,cluster]

Environment (all optional):
  BENCH_SCENARIOS      comma-separated subset of ${ALL_SCENARIOS.join(', ')} (default: all but profile and cluster)
  BENCH_KINDS          which receivers to run (default: all six): gateway (default subscriptions),
                       resumable (gateway with TOPICGATE_RESUME_WINDOW, subscribe { resumable: true } + received),
                       amqp (raw amqplib), amqp-held (raw amqplib holding deliveries as a resumable
                       subscription's queue does: the broker's share of its cost), stomp (Web-STOMP),
                       mqtt (Web-MQTT, clean_session=false, QoS 1); amqp-held runs in fanout only.
                       idle and logtail run only gateway, amqp, stomp; churn only gateway, resumable, amqp
  BENCH_CLIENTS        fan-out client counts (default: 1,100,500,1000; --quick: 100,500)
  BENCH_IDLE_CLIENTS   idle connection counts (default: 1000,5000; --quick: 1000)
  BENCH_PROFILE_CLIENTS  fan-out client counts profiled with --cpu-prof (default: 100,500)
  BENCH_MEASURE_MS     measurement window per fan-out run (default: 8000; --quick: 3000)
  BENCH_WARMUP_MS      warm-up before it (default: 2000; --quick: 1000)
  BENCH_WORKERS        load-generator processes (default: 4)
  BENCH_GATEWAYS       gateway processes for fan-out and log tail, clients spread over them (default: 1)
  BENCH_GATEWAY_NODE_ARGS  extra node flags for gateway processes, space-separated (default: none)
  BENCH_RATE           paced fan-out, deliveries/s in total (default: 10000)
  BENCH_QUIET_PCT      before each run, wait until the machine is below this % of one core busy (default: 25) ...
  BENCH_QUIET_MAX_MS   ... for at most this long (default: 10000); the report warns when it was not
  BENCH_FLAT_WINDOW    flat-out runs: deliveries in flight, published but not yet received by the slowest client (default: 10000)
  BENCH_ROUNDS         fan-out: run every kind this many times in turn (A B C A B C …) and report each kind's
                       median, with the range; for ratios steadier than one run's ±15 % (default: 1)
  BENCH_RAW_CHANNELS   per-queue (default: one channel per raw consumer, the gateway's layout) or shared (one per generator process)
  BENCH_GATEWAY_CLI    the topicgate cli.js to run (default: this checkout's server/dist/cli.js)
  BENCH_LABEL          a name for the gateway build in the report
  BENCH_AMQP_URL       (default: amqp://guest:guest@127.0.0.1:5672)
  BENCH_MANAGEMENT_URL (default: http://127.0.0.1:15672)
  BENCH_STOMP_URL      (default: ws://127.0.0.1:15674/ws)
  BENCH_MQTT_URL       (default: ws://127.0.0.1:15675/ws)
  BENCH_RESULTS_DIR    where the report goes (default: bench/results; a trial run can write elsewhere)
  BENCH_RESUME_WINDOW  TOPICGATE_RESUME_WINDOW for the resumable kind's gateways, seconds (default: 60)

The cluster scenario (opt-in: --scenarios cluster) starts scripts/cluster.sh's rig (3 RabbitMQ nodes,
3 gateways, HAProxy on 8180: needs root and haproxy, ~1 min to start, stopped at the end whatever
happens) and runs fan-out through HAProxy beside one gateway on the bench's broker, plus broker
memory per subscription on both. Figures on a 2-core box are an indication only.
  BENCH_CLUSTER_CLIENTS       fan-out client counts (default: 100,500,1000; --quick: 100,500)
  BENCH_CLUSTER_IDLE_CLIENTS  idle subscriptions for the memory figure (default: 1000)
  BENCH_CLUSTER_DIR           the rig's TOPICGATE_CLUSTER_DIR (default: /tmp/topicgate-cluster-bench)
  BENCH_CLUSTER_PUBLISH_NODE  rig node 1-3 the publisher connects to (default: 1)
`;

export function readOptions(argv: string[], env: NodeJS.ProcessEnv): BenchOptions {
  const { values } = parseArgs({ args: argv, options: { quick: { type: 'boolean' }, scenarios: { type: 'string' }, help: { type: 'boolean' } }, strict: true });
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const quick = values.quick === true || env.BENCH_QUICK === '1';
  const scenarioText = values.scenarios ?? env.BENCH_SCENARIOS;
  const scenarios = scenarioText ? (scenarioText.split(',').map((s) => s.trim()) as ScenarioName[]) : DEFAULT_SCENARIOS;
  for (const s of scenarios) if (!ALL_SCENARIOS.includes(s)) throw new Error(`unknown scenario "${s}"; known: ${ALL_SCENARIOS.join(', ')}`);
  const kinds = (env.BENCH_KINDS ? env.BENCH_KINDS.split(',').map((s) => s.trim()) : [...ALL_KINDS]) as ClientKind[];
  for (const k of kinds) if (!ALL_KINDS.includes(k)) throw new Error(`unknown receiver kind "${k}"; known: ${ALL_KINDS.join(', ')}`);
  const root = fileURLToPath(new URL('../../', import.meta.url));
  return {
    quick,
    scenarios,
    kinds,
    fanoutClients: numbers(env.BENCH_CLIENTS, quick ? [100, 500] : [1, 100, 500, 1000]),
    idleClients: numbers(env.BENCH_IDLE_CLIENTS, quick ? [1000] : [1000, 5000]),
    profileClients: numbers(env.BENCH_PROFILE_CLIENTS, [100, 500]),
    pacedDeliveries: num(env.BENCH_RATE, 10_000),
    warmupMs: num(env.BENCH_WARMUP_MS, quick ? 1000 : 2000),
    measureMs: num(env.BENCH_MEASURE_MS, quick ? 3000 : 8000),
    workers: num(env.BENCH_WORKERS, 4),
    gatewayProcesses: Math.max(1, num(env.BENCH_GATEWAYS, 1)),
    gatewayNodeArgs: (env.BENCH_GATEWAY_NODE_ARGS ?? '').split(' ').filter(Boolean),
    flatWindow: num(env.BENCH_FLAT_WINDOW, 10_000),
    rounds: Math.max(1, Math.round(num(env.BENCH_ROUNDS, 1))),
    bodyBytes: 200,
    rawSharedChannel: env.BENCH_RAW_CHANNELS === 'shared',
    quietBusyPct: num(env.BENCH_QUIET_PCT, 25),
    quietMaxMs: num(env.BENCH_QUIET_MAX_MS, 10_000),
    churnLoops: num(env.BENCH_CHURN_LOOPS, 40),
    churnMs: quick ? 3000 : 8000,
    logtail: { builds: 100, linesPerSecond: 20, clients: 500, logsPerClient: 2, warmupMs: quick ? 1000 : 2000, measureMs: quick ? 4000 : 15_000 },
    amqpUrl: env.BENCH_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672',
    managementUrl: env.BENCH_MANAGEMENT_URL ?? 'http://127.0.0.1:15672',
    stompUrl: env.BENCH_STOMP_URL ?? 'ws://127.0.0.1:15674/ws',
    mqttUrl: env.BENCH_MQTT_URL ?? 'ws://127.0.0.1:15675/ws',
    resumeWindow: num(env.BENCH_RESUME_WINDOW, 60),
    cliPath: env.BENCH_GATEWAY_CLI ?? `${root}server/dist/cli.js`,
    resultsDir: env.BENCH_RESULTS_DIR ?? `${root}bench/results`,
    label: env.BENCH_LABEL ?? '',
    cluster: {
      clients: numbers(env.BENCH_CLUSTER_CLIENTS, quick ? [100, 500] : [100, 500, 1000]),
      idleClients: num(env.BENCH_CLUSTER_IDLE_CLIENTS, 1000),
      dir: env.BENCH_CLUSTER_DIR ?? '/tmp/topicgate-cluster-bench',
      publishNode: [1, 2, 3].includes(Number(env.BENCH_CLUSTER_PUBLISH_NODE)) ? Number(env.BENCH_CLUSTER_PUBLISH_NODE) : 1,
    },
  };
}
