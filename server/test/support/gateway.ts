/**
 * A real gateway on the real RabbitMQ, in this process, with its own exchange
 * and gateway id; and a socket.io test client that speaks protocol v1.
 */
import {
  ClientEvent,
  ServerEvent,
  type Delivery,
  type ResyncNotice,
  type SubscribeAck,
  type UnsubscribeAck,
  type UnsubscribedNotice,
} from '@topicgate/shared';
import { io, type Socket } from 'socket.io-client';
import type { GatewayConfig } from '../../src/config.js';
import { DEFAULT_RESUMABLE_PREFETCH } from '../../src/mq/connector.js';
import { startGateway, type RunningGateway, type StartOptions } from '../../src/server.js';
import { deleteGatewayExchanges, quietLog, TEST_AMQP_URL, uniqueName } from './broker.js';
import { Inbox } from './inbox.js';

export interface TestGateway extends RunningGateway {
  exchange: string;
}

export function testConfig(overrides: Partial<GatewayConfig> = {}): GatewayConfig {
  return {
    port: 0,
    metricsPort: 0,
    host: '127.0.0.1',
    amqpUrls: [TEST_AMQP_URL],
    exchange: uniqueName('topicgate-test'),
    gatewayId: uniqueName('gw'),
    jwt: null,
    maxSubscriptions: 1000,
    maxPayloadBytes: 16 * 1024,
    subscribesPerSecond: 100_000,
    clientBufferBytes: 1024 * 1024,
    amqpHeartbeatSeconds: 15,
    maxConnectionsPerSubject: 0,
    maxSubscriptionsPerSubject: 0,
    resumeWindowSeconds: 0,
    resumeBacklog: 10_000,
    resumePrefetch: DEFAULT_RESUMABLE_PREFETCH,
    corsOrigins: true,
    logLevel: 'silent',
    ...overrides,
  };
}

const started: TestGateway[] = [];

export async function startTestGateway(overrides: Partial<GatewayConfig> = {}, options: StartOptions = {}): Promise<TestGateway> {
  const config = testConfig(overrides);
  const gateway = await startGateway(config, { log: quietLog, ...options });
  const test = Object.assign(gateway, { exchange: config.exchange });
  started.push(test);
  return test;
}

const stopping = new WeakMap<TestGateway, Promise<void>>();

/** Whether a test gateway still running uses `exchange` (a second gateway may share the first's, as resume across gateways does). */
export function exchangeInUse(exchange: string): boolean {
  return started.some((gateway) => gateway.exchange === exchange);
}

/**
 * Closes one gateway and deletes its exchanges once no running test gateway
 * shares them; idempotent (a file's hooks and the kit's fixture may both ask).
 */
export function stopTestGateway(gateway: TestGateway): Promise<void> {
  const at = started.indexOf(gateway);
  if (at >= 0) started.splice(at, 1);
  let stopped = stopping.get(gateway);
  if (stopped === undefined) {
    stopped = (async () => {
      await gateway.close();
      if (gateway.mq.kind === 'amqp' && !exchangeInUse(gateway.exchange)) await deleteGatewayExchanges(gateway.exchange);
    })();
    stopping.set(gateway, stopped);
  }
  return stopped;
}

/** Closes every gateway started by this file and deletes their exchanges; call from afterAll/afterEach. */
export async function stopTestGateways(): Promise<void> {
  for (const gateway of [...started]) await stopTestGateway(gateway);
}

export class TestClient {
  readonly messages = new Inbox<Delivery>();
  readonly resyncs = new Inbox<ResyncNotice>();
  readonly unsubscribed = new Inbox<UnsubscribedNotice>();

  constructor(readonly socket: Socket) {
    socket.on(ServerEvent.Messages, (batch: Delivery[]) => batch.forEach(this.messages.push));
    socket.on(ServerEvent.Resync, this.resyncs.push);
    socket.on(ServerEvent.Unsubscribed, this.unsubscribed.push);
  }

  subscribe(pattern: unknown): Promise<SubscribeAck> {
    return this.socket.timeout(10_000).emitWithAck(ClientEvent.Subscribe, { pattern });
  }

  /** Subscribes and fails the test unless the gateway accepted. */
  async mustSubscribe(pattern: string): Promise<string> {
    const ack = await this.subscribe(pattern);
    if (!ack.ok) throw new Error(`subscribe ${pattern} refused: ${JSON.stringify(ack.error)}`);
    return ack.id;
  }

  unsubscribe(id: unknown): Promise<UnsubscribeAck> {
    return this.socket.timeout(10_000).emitWithAck(ClientEvent.Unsubscribe, { id });
  }

  /** Any event with any payload, for hostile-input tests. */
  emitWithAck(event: string, ...args: unknown[]): Promise<any> {
    return this.socket.timeout(10_000).emitWithAck(event, ...args);
  }

  /** Deliveries for one subscription, in arrival order. */
  deliveriesFor(id: string): Delivery[] {
    return this.messages.items.filter((m) => m.id === id);
  }

  close(): void {
    this.socket.disconnect();
  }
}

/** A connected socket.io client (websocket only, no reconnection); rejects with the `connect_error`, leaving nothing open. */
export async function connectClient(url: string, token?: string): Promise<TestClient> {
  const socket = io(url, { auth: token === undefined ? {} : { token }, transports: ['websocket'], reconnection: false, forceNew: true });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('connect_error', (err) => {
      socket.close();
      reject(err);
    });
  });
  return new TestClient(socket);
}
