/**
 * `topicgate demo`: the gateway plus a simulated CI (its store, REST API and
 * web pages) in one process — on the embedded broker, or on RabbitMQ when
 * TOPICGATE_AMQP_URL is set. The demo is its own identity provider: a random
 * secret per run, and tokens minted for its pages.
 */
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import express from 'express';
import { amqpTransport, createPublisher, type Publisher, type PublisherTransport } from '@topicgate/publisher';
import { ConfigError, loadConfig, type GatewayConfig, type Settings } from '../config.js';
import { createLogger, type Logger } from '../log.js';
import type { MqConnector } from '../mq/connector.js';
import { startGateway, type RunningGateway } from '../server.js';
import { ChaosTransport } from './chaos-transport.js';
import { CiSimulator, type SimulatorOptions } from './ci-simulator.js';
import { connectorTransport } from './connector-transport.js';
import type { DemoTopics } from './model.js';
import { createRestApi } from './rest-api.js';
import { DemoStore } from './store.js';

/** Static pages live beside the compiled code's package, not in dist. */
const PAGES_DIR = fileURLToPath(new URL('../../demo-pages/', import.meta.url));

export interface DemoOptions {
  simulator?: SimulatorOptions;
  /** Builds kept in the store; older finished ones are deleted (and the deletion announced). Default: 50. */
  keepBuilds?: number;
  /**
   * The secret the demo signs its tokens with; random per run by default.
   * Tests set it to start a second gateway that trusts the demo's tokens.
   */
  jwtSecret?: string;
}

/** The demo's exchange unless TOPICGATE_EXCHANGE says otherwise: never the gateway's default, `topicgate`. */
export const DEMO_EXCHANGE = 'topicgate-demo';

/**
 * The demo is its own identity provider (it hands any visitor a token for
 * `builds.#` and `logs.#`) and publishes made-up builds. A JWT key in its
 * environment means it was started where a real gateway runs: refuse.
 */
function refuseProductionLook(settings: Settings): void {
  const keys = (Object.keys(settings) as string[]).filter((name) => name === 'jwt-secret' || name === 'jwt-public-key' || name.includes('jwks'));
  if (keys.length === 0) return;
  throw new ConfigError(
    `topicgate demo mints its own tokens for anyone and publishes made-up builds; it refuses to run where a JWT key is configured ` +
      `(${keys.map((name) => `TOPICGATE_${name.toUpperCase().replaceAll('-', '_')}`).join(', ')}), which looks like a production environment. ` +
      'Unset it for the demo, or run `topicgate serve`.',
  );
}

export async function runDemo(settings: Settings, options: DemoOptions = {}): Promise<RunningGateway> {
  refuseProductionLook(settings);
  const secret = options.jwtSecret ?? randomBytes(32).toString('base64url');
  // Fenced off from anything real unless told otherwise: its own exchange, this
  // machine only, and no metrics listener (several demos may run on one machine).
  // Resume on, so a blip or a closed laptop lid does not reload the pages.
  const config = loadConfig({
    exchange: DEMO_EXCHANGE,
    host: '127.0.0.1',
    'metrics-port': 'off',
    'resume-window': '60',
    ...settings,
    'jwt-secret': secret,
    'jwt-algorithms': 'HS256',
  });
  const log = createLogger(config.logLevel);
  const store = new DemoStore(options.keepBuilds);
  let chaos: ChaosTransport | undefined;
  let publisher: Publisher<DemoTopics> | undefined;

  let gateway: RunningGateway;
  try {
    gateway = await startGateway(config, {
      log,
      extendApp: (app, mq) => {
        chaos = new ChaosTransport(brokerTransport(config, mq), { enabled: settings['demo-chaos'] === '1' });
        publisher = demoPublisher(chaos, log);
        app.use('/api', createRestApi({ store, chaos, secret }));
        app.use(express.static(PAGES_DIR));
      },
    });
  } catch (err) {
    // The gateway did not start (a port in use…): its publisher's connection must not keep the process alive.
    await publisher?.close({ timeoutMs: 0 });
    throw err;
  }
  const simulator = new CiSimulator(store, publisher!, log, options.simulator);
  simulator.start();
  log.info({ chaos: chaos!.chaos.enabled, broker: gateway.mq.kind }, `topicgate demo: open ${gateway.url}/`);
  process.stderr.write(`\n  topicgate demo is running: open ${gateway.url}/  (Ctrl-C to stop)\n\n`);

  return {
    ...gateway,
    close: async () => {
      simulator.stop();
      // What chaos still delays goes out within its longest delay; a broker that is down gets a second.
      await publisher!.close({ timeoutMs: 1000 });
      chaos!.stop();
      await gateway.close();
    },
  };
}

/**
 * On RabbitMQ the simulated CI publishes as any back end would: its own
 * connection, over the gateway's URL list, to the gateway's exchange. The
 * embedded broker lives in the gateway, so there it goes through the gateway's connector.
 */
function brokerTransport(config: GatewayConfig, mq: MqConnector): PublisherTransport {
  if (config.amqpUrls.length === 0) return connectorTransport(mq);
  return amqpTransport({
    urls: config.amqpUrls,
    exchange: config.exchange,
    connectionName: `topicgate ${config.gatewayId} demo publisher`,
    heartbeatSeconds: config.amqpHeartbeatSeconds,
  });
}

function demoPublisher(transport: PublisherTransport, log: Logger): Publisher<DemoTopics> {
  const publisher = createPublisher<DemoTopics>({ transport });
  publisher.on('disconnected', (err) => log.warn({ err: err.message }, 'the demo publisher lost its broker connection; buffering and reconnecting'));
  publisher.on('connected', (where) => log.info({ where }, 'the demo publisher is connected'));
  return publisher;
}
