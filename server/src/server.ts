/**
 * Composition root: picks the MQ connector, builds access control, and wires
 * express + socket.io onto one HTTP server.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import type { Express } from 'express';
import { createAccess, withRevocations } from './auth/access-from-config.js';
import { Revocations } from './auth/revocations.js';
import { CLOCK_SKEW_SECONDS, DEFAULT_MAX_TTL_SECONDS } from './auth/token-verifier.js';
import type { GatewayConfig } from './config.js';
import { ControlListener, type RevokeMessage } from './control.js';
import type { Access } from './gateway/access.js';
import { Takeovers } from './gateway/resume/takeovers.js';
import { createSocketServer } from './gateway/socket-server.js';
import { answerErrors, createHttpApp, serveIndex } from './http/app.js';
import { listenForMetrics } from './http/metrics-listener.js';
import { createLogger, type Logger } from './log.js';
import { createMetrics } from './metrics.js';
import { AmqpConnector } from './mq/amqp.js';
import type { MqConnector } from './mq/connector.js';
import { EmbeddedConnector } from './mq/embedded.js';
import { queuePrefixFor } from './mq/queue-names.js';

export interface RunningGateway {
  /** `http://host:port`, for clients and probes. */
  readonly url: string;
  readonly port: number;
  readonly gatewayId: string;
  /** Prefix of every queue this gateway declares: `topicgate.<gateway id>.`. */
  readonly queuePrefix: string;
  /** Name of the broker connection (`rabbitmqctl list_connections user_provided_name`). */
  readonly connectionName: string;
  readonly mq: MqConnector;
  readonly app: Express;
  /** `http://host:port/metrics` of the metrics listener, or null when it is off. */
  readonly metricsUrl: string | null;
  readonly log: Logger;
  /**
   * Takes no new clients: /readyz answers 503 (`draining`) and new socket.io
   * connections are refused, while connected clients are served on. For a
   * deploy's pre-stop step; close() begins with it.
   */
  drain(): void;
  /** Graceful stop: drain(), then `unsubscribed { reason: "shutdown" }` to every client, queues deleted, broker closed. */
  close(): Promise<void>;
}

export interface StartOptions {
  log?: Logger;
  /** Overrides the access control built from `config.jwt` (tests, the demo). */
  access?: Access;
  /** Called before the server listens, to add routes (the demo app). */
  extendApp?: (app: Express, mq: MqConnector) => void;
}

export async function startGateway(config: GatewayConfig, options: StartOptions = {}): Promise<RunningGateway> {
  const log = options.log ?? createLogger(config.logLevel);
  // A revocation is kept as long as a token issued before it can live (docs/protocol.md §10.5).
  const revocations = new Revocations((config.jwt?.maxTtlSeconds ?? DEFAULT_MAX_TTL_SECONDS) + CLOCK_SKEW_SECONDS);
  const access = withRevocations(options.access ?? createAccess(config.jwt, log), revocations);
  const connectionName = `topicgate ${config.gatewayId}`;
  const mq = await connectBroker(config, connectionName, log);
  const metrics = createMetrics(() => (mq instanceof AmqpConnector ? mq.channelCount : 0));
  // A gateway that started with the broker unreachable connects late through the same path: that is no reconnect.
  let connectedBefore = mq.isUp;
  mq.on('reconnected', () => {
    if (connectedBefore) metrics.brokerReconnects.inc();
    connectedBefore = true;
  });
  mq.on('dropped', (reason) => metrics.droppedMessages.inc({ reason }));

  // Set by drain() (and close()): /readyz answers 503 and new socket.io connections are refused.
  let draining = false;
  const isDraining = () => draining;
  const app = createHttpApp({ mq, sdkBundlePath: findSdkBundle(), corsOrigins: config.corsOrigins, isDraining });
  options.extendApp?.(app, mq);
  app.get('/', serveIndex); // after the demo's routes: its pages win at /
  app.use(answerErrors);
  const http = createServer(app);
  // Resumes reach the gateway holding a queue directly, or over the control exchange (which needs the listener, started below).
  let control: ControlListener | null = null;
  const takeovers = new Takeovers(config.amqpUrls.length === 0 ? null : (queue) => control?.announceTakeover(queue) ?? Promise.resolve());
  const sockets = createSocketServer(http, {
    mq,
    access,
    metrics,
    log,
    gatewayId: config.gatewayId,
    maxPayloadBytes: config.maxPayloadBytes,
    corsOrigins: config.corsOrigins,
    isDraining,
    maxConnectionsPerSubject: config.maxConnectionsPerSubject,
    maxSubscriptionsPerSubject: config.maxSubscriptionsPerSubject,
    resume: config.resumeWindowSeconds > 0 ? { windowSeconds: config.resumeWindowSeconds, maxBacklog: config.resumeBacklog, takeovers } : null,
    limits: {
      maxSubscriptions: config.maxSubscriptions,
      subscribesPerSecond: config.subscribesPerSecond,
      clientBufferBytes: config.clientBufferBytes,
    },
  });

  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(config.port, config.host, () => resolve());
  });
  const { port } = http.address() as AddressInfo;
  const metricsListener = config.metricsPort === null ? null : await listenForMetrics(metrics.registry, config.metricsPort, config.host).catch(async (err: unknown) => {
    http.close();
    await mq.close();
    throw err;
  });
  // Revocations from `topicgate revoke`, through the broker; the embedded broker cannot be reached from outside.
  const onRevoke = ({ sub, at }: RevokeMessage) => {
    // The later of the publisher's clock and ours, and never far ahead: a skewed or forged time cannot lock a subject out for long.
    const now = Date.now();
    const { revocation, dropped } = revocations.revoke(sub, Math.min(Math.max(at, now), now + CLOCK_SKEW_SECONDS * 1000));
    const disconnected = sockets.revokeSubject(sub, 'access for this subject was revoked by an operator; tokens issued before now are refused');
    log.info({ sub, notBefore: new Date(revocation.notBefore * 1000).toISOString(), until: new Date(revocation.until * 1000).toISOString(), sockets: disconnected }, 'revoked a subject: its sockets disconnected, its earlier tokens refused');
    if (dropped > 0) log.error({ dropped, kept: revocations.size }, 'too many revocations in force; the oldest were forgotten');
  };
  control = config.amqpUrls.length === 0 ? null : await ControlListener.start({ amqpUrls: config.amqpUrls, exchange: config.exchange, gatewayId: config.gatewayId, heartbeatSeconds: config.amqpHeartbeatSeconds, log }, { onRevoke, onTakeover: (queue) => takeovers.letGo(queue) });

  const host = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host;
  log.info({ port, metricsPort: metricsListener?.port ?? null, gatewayId: config.gatewayId, broker: mq.kind, exchange: config.exchange }, `topicgate listening on http://${host}:${port}`);

  let closing: Promise<void> | null = null;
  const drain = () => {
    if (draining) return;
    draining = true;
    log.info('draining: /readyz answers 503 and new connections are refused; connected clients are still served');
  };
  return {
    url: `http://${host}:${port}`,
    port,
    gatewayId: config.gatewayId,
    queuePrefix: queuePrefixFor(config.gatewayId),
    connectionName,
    mq,
    app,
    metricsUrl: metricsListener ? `http://${host}:${metricsListener.port}/metrics` : null,
    log,
    drain,
    close: () =>
      (closing ??= (async () => {
        drain();
        await control?.close();
        await sockets.shutdown();
        await mq.close();
        http.closeAllConnections();
        await Promise.all([new Promise<void>((resolve) => http.close(() => resolve())), metricsListener?.close()]);
        log.info('topicgate stopped');
      })()),
  };
}

async function connectBroker(config: GatewayConfig, connectionName: string, log: Logger): Promise<MqConnector> {
  const queuePrefix = queuePrefixFor(config.gatewayId);
  if (config.amqpUrls.length === 0) {
    log.info('no TOPICGATE_AMQP_URL: using the embedded broker (single gateway, nothing survives a restart)');
    return new EmbeddedConnector({ queuePrefix, resumablePrefetch: config.resumePrefetch, warn: (message, detail) => log.warn(detail, message) });
  }
  return AmqpConnector.connect({
    urls: config.amqpUrls,
    exchange: config.exchange,
    queuePrefix,
    connectionName,
    heartbeatSeconds: config.amqpHeartbeatSeconds,
    resumablePrefetch: config.resumePrefetch,
    log,
  }, { keepTrying: true });
}

/** The SDK's script-tag build, when the client workspace has been built. */
function findSdkBundle(): string | undefined {
  try {
    const require = createRequire(import.meta.url);
    return require.resolve('@topicgate/client/dist/topicgate.min.js');
  } catch {
    return undefined;
  }
}
