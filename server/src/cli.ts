#!/usr/bin/env node
/**
 * The `topicgate` command: serve, demo, token, publish, revoke. See docs/architecture.md §8.
 */
import { decodeBody, routingKeyError, BodyError } from '@topicgate/shared';
import { ConfigError, SETTINGS, envName, loadConfig, readSettings, type SettingName } from './config.js';
import { createLogger } from './log.js';
import { AmqpConnector, BrokerRefusedError } from './mq/amqp.js';
import { startGateway, type RunningGateway } from './server.js';
import { AuthConfigError, formatDuration, mintToken, parseDuration } from './auth/token-verifier.js';
import { UnavailableError } from './mq/connector.js';
import { controlExchange, publishRevocation } from './control.js';

const USAGE = `topicgate — live updates from a RabbitMQ topic exchange to browsers

Usage:
  topicgate serve                     run the gateway
  topicgate demo                      the gateway plus a simulated CI and its web pages
  topicgate token --sub NAME --topics 'builds.#,logs.#' [--ttl 1h]
                                      mint a token with the configured secret
  topicgate publish KEY JSON          publish one message (with publisher confirms)
  topicgate revoke --sub NAME         end NAME's connections on every gateway sharing the broker,
                                      and refuse NAME's tokens issued before now

Settings (environment variable, or the flag named after it):
${(Object.keys(SETTINGS) as SettingName[])
  .map((name) => {
    const spec: { help: string; default?: string } = SETTINGS[name];
    return `  ${envName(name).padEnd(28)} --${name.padEnd(18)} ${spec.help}${spec.default ? ` (default: ${spec.default})` : ''}`;
  })
  .join('\n')}
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve':
      return serve(rest);
    case 'demo':
      return demo(rest);
    case 'token':
      return token(rest);
    case 'publish':
      return publish(rest);
    case 'revoke':
      return revoke(rest);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}

async function serve(argv: string[]): Promise<number> {
  const { settings } = readSettings(argv, process.env);
  const config = loadConfig(settings);
  const gateway = await startGateway(config).catch(explainListenError);
  return untilSignal(gateway);
}

async function demo(argv: string[]): Promise<number> {
  const { runDemo } = await import('./demo/run-demo.js');
  const { settings } = readSettings(argv, process.env);
  const gateway = await runDemo(settings).catch(explainListenError);
  return untilSignal(gateway);
}

/** A port or interface the gateway cannot listen on is a setting to change, not a bug: say which. */
function explainListenError(err: unknown): never {
  const e = err as NodeJS.ErrnoException & { address?: string; port?: number; setting?: SettingName };
  if (e?.syscall !== 'listen') throw err;
  const where = `${e.address ?? '?'}:${e.port ?? '?'}`;
  const setting = e.setting ?? 'port';
  const knob = `${envName(setting)} (or --${setting})`;
  switch (e.code) {
    case 'EADDRINUSE':
      throw new ConfigError(`port ${e.port} is already in use (${where}): stop the other process, or choose another port with ${knob}`);
    case 'EACCES':
      throw new ConfigError(`not allowed to listen on ${where} (ports below 1024 need privileges): choose another port with ${knob}`);
    case 'EADDRNOTAVAIL':
      throw new ConfigError(`cannot listen on ${where}: no such local address; check TOPICGATE_HOST (or --host)`);
    default:
      throw err;
  }
}

async function token(argv: string[]): Promise<number> {
  const { settings, extra } = readSettings(argv, process.env, { sub: { type: 'string' }, topics: { type: 'string' }, ttl: { type: 'string' } });
  const secret = settings['jwt-secret'];
  if (!secret) throw new ConfigError('topicgate token signs with TOPICGATE_JWT_SECRET (or --jwt-secret); set it to the gateway\'s secret');
  if (typeof extra.sub !== 'string') throw new ConfigError('topicgate token needs --sub NAME (who the token is for)');
  // Without --topics the token would allow nothing, which is never what someone typing this wants by accident.
  if (typeof extra.topics !== 'string') {
    throw new ConfigError("topicgate token needs --topics: the patterns the holder may receive, e.g. --topics 'builds.#,logs.#' (--topics '' mints a token that allows nothing)");
  }
  const topics = extra.topics.split(',').map((t) => t.trim()).filter(Boolean);
  const algorithm = settings['jwt-algorithms']?.split(',')[0]?.trim();
  let minted: string;
  try {
    const ttl = typeof extra.ttl === 'string' ? extra.ttl : '1h';
    const ttlSeconds = parseDuration(ttl);
    const maxTtl = parseDuration(settings['jwt-max-ttl'] ?? SETTINGS['jwt-max-ttl'].default);
    if (ttlSeconds > maxTtl) {
      throw new RangeError(`--ttl ${ttl} is longer than TOPICGATE_JWT_MAX_TTL (${formatDuration(maxTtl)}): gateways would refuse the token; mint a shorter one (clients refresh it)`);
    }
    minted = mintToken({
      secret,
      sub: extra.sub,
      topics,
      ttlSeconds,
      ...(algorithm && { algorithm }),
      ...(settings['jwt-issuer'] && { issuer: settings['jwt-issuer'] }),
      ...(settings['jwt-audience'] && { audience: settings['jwt-audience'] }),
    });
  } catch (err) {
    // Both throw RangeError for a bad --topics or --ttl: the user's input, not a bug.
    if (err instanceof RangeError) throw new ConfigError(err.message);
    throw err;
  }
  process.stdout.write(minted + '\n');
  return 0;
}

async function publish(argv: string[]): Promise<number> {
  const { settings, positionals } = readSettings(argv, process.env);
  const [key, json] = positionals;
  if (key === undefined || json === undefined || positionals.length > 2) {
    throw new ConfigError('usage: topicgate publish KEY JSON, e.g. topicgate publish builds.42.finished \'{"id":42,"version":3}\'');
  }
  // Arguments are checked before anything connects, so a typo costs no broker round trip.
  const keyError = routingKeyError(key);
  if (keyError) throw new ConfigError(`KEY argument: ${keyError}`);
  let body;
  try {
    body = decodeBody(json);
  } catch (err) {
    throw new ConfigError(`JSON argument: ${(err as BodyError).message}`);
  }
  const config = loadConfig(settings, { requireAuth: false });
  if (config.amqpUrls.length === 0) {
    throw new ConfigError('publish needs TOPICGATE_AMQP_URL: the embedded broker lives inside one gateway process and cannot be reached from outside');
  }
  const log = createLogger(settings['log-level'] ?? 'warn');
  const mq = await AmqpConnector.connect({ urls: config.amqpUrls, exchange: config.exchange, queuePrefix: 'topicgate.publish.', connectionName: 'topicgate publish', log });
  try {
    await mq.produce(key, body);
  } finally {
    await mq.close();
  }
  process.stderr.write(`published ${key} to exchange ${config.exchange} (confirmed by the broker)\n`);
  return 0;
}

async function revoke(argv: string[]): Promise<number> {
  const { settings, extra, positionals } = readSettings(argv, process.env, { sub: { type: 'string' } });
  if (typeof extra.sub !== 'string' || extra.sub === '' || positionals.length > 0) {
    throw new ConfigError('topicgate revoke needs --sub NAME: the token subject whose connections end and whose earlier tokens are refused');
  }
  const config = loadConfig(settings, { requireAuth: false });
  if (config.amqpUrls.length === 0) {
    throw new ConfigError('revoke needs TOPICGATE_AMQP_URL: revocations reach the gateways through the broker they share (the embedded broker cannot be reached from outside)');
  }
  const log = createLogger(settings['log-level'] ?? 'warn');
  const at = Date.now();
  await publishRevocation({ amqpUrls: config.amqpUrls, exchange: config.exchange, gatewayId: 'revoke', heartbeatSeconds: config.amqpHeartbeatSeconds, log }, extra.sub, at);
  process.stderr.write(
    `revoked "${extra.sub}" at ${new Date(at).toISOString()}: published to exchange ${controlExchange(config.exchange)} (confirmed by the broker). ` +
      'Every gateway connected to the broker now disconnects its sockets and, for as long as TOPICGATE_JWT_MAX_TTL, refuses its tokens issued before then. ' +
      'Gateways started later, or cut off from the broker meanwhile, do not know it; stop issuing tokens to this subject if it is banned.\n',
  );
  return 0;
}

/** Runs until SIGTERM/SIGINT, then shuts down gracefully within a bound. Logs through the gateway's logger: one JSON stream. */
function untilSignal(gateway: RunningGateway): Promise<number> {
  const { log } = gateway;
  return new Promise((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal }, 'shutting down: unsubscribing clients and deleting their queues');
      const force = setTimeout(() => {
        log.error({ signal }, 'shutdown took longer than 10 s; exiting anyway');
        log.flush();
        resolve(1);
      }, 10_000);
      force.unref();
      gateway.close().then(
        () => resolve(0),
        (err: unknown) => {
          log.error({ err: (err as Error).message }, 'shutdown failed');
          log.flush();
          resolve(1);
        },
      );
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    // Mistakes in settings or arguments (and an unreachable broker) get their
    // message on one line; anything else its stack, to report.
    const userError = err instanceof ConfigError || err instanceof AuthConfigError || err instanceof UnavailableError || err instanceof BrokerRefusedError;
    process.stderr.write(`topicgate: ${userError ? (err as Error).message : ((err as Error).stack ?? String(err))}\n`);
    process.exit(1);
  },
);
