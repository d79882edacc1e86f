/**
 * `topicgate demo`: the gateway plus a simulated CI (its store, REST API and
 * web pages) in one process — on the embedded broker, or on RabbitMQ when
 * TOPICGATE_AMQP_URL is set. The demo is its own identity provider: a random
 * secret per run, and tokens minted for its pages.
 */
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import express from 'express';
import { loadConfig, type Settings } from '../config.js';
import { createLogger } from '../log.js';
import { startGateway, type RunningGateway } from '../server.js';
import { ChaosPublisher } from './chaos-publisher.js';
import { CiSimulator, type SimulatorOptions } from './ci-simulator.js';
import { createRestApi } from './rest-api.js';
import { DemoStore } from './store.js';

/** Static pages live beside the compiled code's package, not in dist. */
const PAGES_DIR = fileURLToPath(new URL('../../demo-pages/', import.meta.url));

export interface DemoOptions {
  simulator?: SimulatorOptions;
  /** Builds kept in the store; older finished ones are deleted (and the deletion announced). Default: 50. */
  keepBuilds?: number;
}

export async function runDemo(settings: Settings, options: DemoOptions = {}): Promise<RunningGateway> {
  const secret = randomBytes(32).toString('base64url');
  // No metrics listener unless asked for: the demo is for trying topicgate, and several may run on one machine.
  const config = loadConfig({ 'metrics-port': 'off', ...settings, 'jwt-secret': secret, 'jwt-algorithms': 'HS256' });
  const log = createLogger(config.logLevel);
  const store = new DemoStore(options.keepBuilds);
  let publisher: ChaosPublisher | undefined;

  const gateway = await startGateway(config, {
    log,
    extendApp: (app, mq) => {
      publisher = new ChaosPublisher(mq, log, { enabled: settings['demo-chaos'] === '1' });
      app.use('/api', createRestApi({ store, publisher, secret }));
      app.use(express.static(PAGES_DIR));
    },
  });
  const simulator = new CiSimulator(store, publisher!, options.simulator);
  simulator.start();
  log.info({ chaos: publisher!.chaos.enabled, broker: gateway.mq.kind }, `topicgate demo: open ${gateway.url}/`);
  process.stderr.write(`\n  topicgate demo is running: open ${gateway.url}/  (Ctrl-C to stop)\n\n`);

  return {
    ...gateway,
    close: async () => {
      simulator.stop();
      publisher!.stop();
      await gateway.close();
    },
  };
}
