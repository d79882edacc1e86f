/**
 * The demo (gateway + simulated CI + REST API + pages) started in-process
 * against the real RabbitMQ, on its own exchange, with a CI fast enough for
 * tests; and the REST side of every comparison the specs make.
 */
import { randomBytes } from 'node:crypto';
import { runDemo } from '../../server/src/demo/run-demo.js';
import type { SimulatorOptions } from '../../server/src/demo/ci-simulator.js';
import type { Build, LogChunk } from '../../server/src/demo/model.js';
import type { RunningGateway } from '../../server/src/server.js';
import { deleteGatewayExchanges, eventually, gatewayQueues, requireBroker, TEST_AMQP_URL, uniqueName, type QueueInfo } from '../../server/test/support/broker.js';
import { exchangeInUse } from '../../server/test/support/gateway.js';

export type { Build };

/** Builds of 4–7 steps lasting about 2 s, a new one every ~0.6 s, 40 log lines per second. */
export const FAST_CI: SimulatorOptions = { maxRunning: 3, newBuildEveryMs: 600, stepMs: 350, linesPerSecond: 40 };

/** Builds that last 1.5–7.5 s, so that one is still running across a broker fault. */
export const SLOW_CI: SimulatorOptions = { maxRunning: 3, newBuildEveryMs: 800, stepMs: 700, linesPerSecond: 25 };

export interface Demo {
  readonly gateway: RunningGateway;
  readonly url: string;
  /** The demo's topic exchange (its own, deleted when it closes). */
  readonly exchange: string;
  /** The secret the demo signs its tokens with: another gateway configured with it trusts the demo's pages. */
  readonly jwtSecret: string;
  /** Prefix of the transient queues this demo's gateway declares (`topicgate.<gatewayId>.`). */
  readonly queuePrefix: string;
  /** This demo's queues on the broker: transient ones by prefix, resumable ones (the demo's default) by their binding to its exchange. */
  queues(): Promise<QueueInfo[]>;
  builds(): Promise<Build[]>;
  build(id: number): Promise<Build>;
  /** The whole log of a build, line 0 first. */
  logLines(id: number): Promise<string[]>;
  /** A token minted by the demo, as a page gets it. */
  token(ttlSeconds?: number): Promise<{ token: string; expiresAt: number }>;
  chaos(): Promise<boolean>;
  close(): Promise<void>;
}

export async function startDemo(options: { chaos?: boolean; simulator?: SimulatorOptions } = {}): Promise<Demo> {
  await requireBroker();
  const exchange = uniqueName('topicgate-e2e');
  const jwtSecret = randomBytes(32).toString('base64url');
  const gateway = await runDemo(
    {
      port: '0',
      host: '127.0.0.1',
      'amqp-url': TEST_AMQP_URL,
      exchange,
      'log-level': 'silent',
      ...(options.chaos && { 'demo-chaos': '1' }),
    },
    { simulator: options.simulator ?? FAST_CI, jwtSecret },
  );
  const getJson = async <T>(path: string): Promise<T> => {
    const response = await fetch(`${gateway.url}${path}`);
    if (!response.ok) throw new Error(`GET ${path} answered HTTP ${response.status}`);
    return (await response.json()) as T;
  };
  const demo: Demo = {
    gateway,
    url: gateway.url,
    exchange,
    jwtSecret,
    queuePrefix: gateway.queuePrefix,
    queues: () => gatewayQueues(gateway.queuePrefix, exchange),
    builds: () => getJson<Build[]>('/api/builds'),
    build: (id) => getJson<Build>(`/api/builds/${id}`),
    logLines: async (id) => {
      // The API answers at most 5000 lines per request.
      const lines: string[] = [];
      for (;;) {
        const chunk = await getJson<LogChunk>(`/api/logs/${id}/lines?from=${lines.length}&limit=5000`);
        if (chunk.lines.length === 0) return lines;
        lines.push(...chunk.lines);
      }
    },
    token: (ttl) => getJson(`/api/demo-token${ttl === undefined ? '' : `?ttl=${ttl}`}`),
    chaos: async () => (await getJson<{ enabled: boolean }>('/api/chaos')).enabled,
    close: async () => {
      await gateway.close();
      // A test gateway sharing the demo's exchange (resume across gateways) deletes it when it stops.
      if (!exchangeInUse(exchange)) await deleteGatewayExchanges(exchange).catch(() => undefined);
    },
  };
  const sdk = await fetch(`${gateway.url}/topicgate.min.js`);
  if (!sdk.ok) {
    await demo.close();
    throw new Error('the gateway does not serve /topicgate.min.js: build the SDK first (`npm run build`, which `npm test` runs)');
  }
  return demo;
}

export const isFinished = (build: Pick<Build, 'state'>): boolean => build.state === 'success' || build.state === 'failure';

/** Waits for a build that matches, as the REST API reports it. */
export async function waitForBuild(demo: Demo, what: string, match: (build: Build) => boolean, timeoutMs = 20_000): Promise<Build> {
  let found: Build | undefined;
  await eventually(async () => (found = (await demo.builds()).find(match)) !== undefined, `a build: ${what}`, timeoutMs);
  return found!;
}
