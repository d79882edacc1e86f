/**
 * `npm run soak -- [flags]`: how long, how many clients, how hard, and the
 * bounds the judgements use. Broker and gateway build come from the same
 * environment variables as the bench.
 */
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

export interface SoakOptions {
  minutes: number;
  clients: number;
  /** Subscriptions held over all clients (the slow client's included). */
  subscriptions: number;
  /** Messages per second published, over all keys. */
  rate: number;
  workers: number;
  /** Unsubscribe+subscribe pairs per second, over all clients. */
  churn: number;
  cutEverySeconds: number;
  cutClients: number;
  refreshEverySeconds: number;
  refreshClients: number;
  /** How long a refreshed client keeps its narrow token before getting a broad one again. */
  narrowSeconds: number;
  slowEverySeconds: number;
  slowPauseSeconds: number;
  sampleSeconds: number;
  /** Samples before this are left out of the flatness judgements and the RSS fit. */
  warmupSeconds: number;
  maxRssMiBPerHour: number;
  /** The RSS judgement needs at least this long after warm-up; shorter runs only report the slope. */
  minFitMinutes: number;
  channelSlack: number;
  fdSlack: number;
  maxP99Ms: number;
  streams: number;
  events: number;
  bodyBytes: number;
  /** TOPICGATE_CLIENT_BUFFER_BYTES for the gateway; undefined: its default. */
  clientBufferBytes: number | undefined;
  gatewayLogLevel: string;
  amqpUrl: string;
  managementUrl: string;
  cliPath: string;
  root: string;
  resultsDir: string;
}

/** flag, default, help. The defaults are what `npm run soak` does. */
const FLAGS = {
  minutes: [10, 'how long to publish and churn'],
  clients: [60, 'socket.io clients'],
  subscriptions: [300, 'subscriptions held over all clients'],
  rate: [1500, 'messages per second published (confirm channel, straight to the exchange)'],
  workers: [2, 'load-worker processes the clients are spread over'],
  churn: [10, 'unsubscribe+subscribe pairs per second, over all clients'],
  'cut-every': [10, 'seconds between rounds of cuts'],
  'cut-clients': [3, 'clients cut per round (disconnect, transport close, TCP FIN, TCP RST in turn)'],
  'refresh-every': [30, 'seconds between rounds of narrowing refreshes'],
  'refresh-clients': [5, 'clients given a narrower token per round'],
  'narrow-seconds': [20, 'how long they keep it before a broad token again'],
  'slow-every': [120, 'seconds between the slow client\'s pauses (the first starts 30 s in)'],
  'slow-pause': [20, 'seconds the slow client stops reading'],
  'sample-every': [5, 'seconds between samples'],
  warmup: [-1, 'seconds left out of flatness judgements and the RSS fit (default: 20 % of the run, 30-120 s)'],
  'max-rss-growth': [20, 'RSS growth bound after warm-up, MiB per hour (linear fit)'],
  'min-fit-minutes': [5, 'judge RSS growth only when at least this long is fitted (shorter: reported only)'],
  'channel-slack': [3, 'channels the gateway may hold at the end above its level after warm-up'],
  'fd-slack': [10, 'file descriptors the gateway may hold at the end above its level after warm-up'],
  'max-p99-ms': [500, 'publish → client latency p99 bound (the slow client apart)'],
  streams: [100, 'streams: keys are soak.s<stream>.e<event>'],
  events: [5, 'events per stream'],
  'body-bytes': [200, 'message body size'],
  'client-buffer-bytes': [0, 'TOPICGATE_CLIENT_BUFFER_BYTES for the gateway (default: the gateway\'s own, 1 MiB)'],
} as const satisfies Record<string, readonly [number, string]>;

type Flag = keyof typeof FLAGS;

export function usage(): string {
  const width = Math.max(...Object.keys(FLAGS).map((k) => k.length)) + 8;
  const lines = Object.entries(FLAGS).map(([flag, [def, help]]) => `  --${flag} N`.padEnd(width + 4) + `${help}${def > 0 ? ` (default ${def})` : ''}`);
  return `npm run soak [-- --minutes 60 --clients 60 ...]

Runs one gateway under churn for a while and proves that no message is lost
without a resync; prints PASS/FAIL judgements and writes
bench/results/soak-<run id>.json. Exit code 1 when a judgement fails.

Flags:
${lines.join('\n')}
${'  --gateway-log-level L'.padEnd(width + 4)}the gateway's TOPICGATE_LOG_LEVEL (default info)
${'  --help'.padEnd(width + 4)}this text

Environment: BENCH_AMQP_URL (default amqp://guest:guest@127.0.0.1:5672),
BENCH_MANAGEMENT_URL (default http://127.0.0.1:15672), BENCH_GATEWAY_CLI
(default: this checkout's server/dist/cli.js).
`;
}

export function readOptions(argv: string[], env: NodeJS.ProcessEnv): SoakOptions {
  const spec = Object.fromEntries(Object.keys(FLAGS).map((k) => [k, { type: 'string' as const }]));
  const { values } = parseArgs({ args: argv, options: { ...spec, 'gateway-log-level': { type: 'string' }, help: { type: 'boolean' } }, strict: true });
  if (values.help) {
    process.stdout.write(usage());
    process.exit(0);
  }
  const get = (flag: Flag): number => {
    const text = (values as Record<string, string | boolean | undefined>)[flag] as string | undefined;
    if (text === undefined) return FLAGS[flag][0];
    const n = Number(text);
    if (!Number.isFinite(n) || n < 0) throw new Error(`--${flag} must be a non-negative number, got "${text}"`);
    return n;
  };
  const minutes = get('minutes');
  if (minutes <= 0) throw new Error('--minutes must be more than 0');
  const clients = Math.max(2, Math.round(get('clients')));
  const warmup = get('warmup');
  const root = fileURLToPath(new URL('../../../', import.meta.url));
  return {
    minutes,
    clients,
    subscriptions: Math.max(clients, Math.round(get('subscriptions'))),
    rate: get('rate'),
    workers: Math.max(1, Math.min(clients, Math.round(get('workers')))),
    churn: get('churn'),
    cutEverySeconds: get('cut-every'),
    cutClients: Math.round(get('cut-clients')),
    refreshEverySeconds: get('refresh-every'),
    refreshClients: Math.round(get('refresh-clients')),
    narrowSeconds: get('narrow-seconds'),
    slowEverySeconds: get('slow-every'),
    slowPauseSeconds: get('slow-pause'),
    sampleSeconds: Math.max(1, get('sample-every')),
    warmupSeconds: warmup >= 0 ? warmup : Math.min(120, Math.max(30, minutes * 60 * 0.2)),
    maxRssMiBPerHour: get('max-rss-growth'),
    minFitMinutes: get('min-fit-minutes'),
    channelSlack: get('channel-slack'),
    fdSlack: get('fd-slack'),
    maxP99Ms: get('max-p99-ms'),
    streams: Math.max(3, Math.round(get('streams'))),
    events: Math.max(1, Math.round(get('events'))),
    bodyBytes: get('body-bytes'),
    clientBufferBytes: get('client-buffer-bytes') || undefined,
    gatewayLogLevel: (values['gateway-log-level'] as string | undefined) ?? 'info',
    amqpUrl: env.BENCH_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672',
    managementUrl: env.BENCH_MANAGEMENT_URL ?? 'http://127.0.0.1:15672',
    cliPath: env.BENCH_GATEWAY_CLI ?? `${root}server/dist/cli.js`,
    root,
    resultsDir: `${root}bench/results`,
  };
}
