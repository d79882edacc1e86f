/**
 * The MQ connector on RabbitMQ, through amqplib: one connection, reconnected
 * with backoff across a list of cluster nodes. Channel layout is in
 * amqp-channels.ts, one consumer's life in amqp-consumer.ts.
 *
 * Transient consumers read exclusive queues with names we choose
 * (`<queuePrefix><name>`): the broker deletes them when our connection dies,
 * even on kill -9, and a reconnect can declare the same queue again.
 */
import { EventEmitter } from 'node:events';
import amqp, { type ChannelModel, type ConsumeMessage } from 'amqplib';
import { encodeBody, routingKeyError, type PublishableBody } from '@topicgate/shared';
import type { Logger } from 'pino';
import { ChannelSet } from './amqp-channels.js';
import { AmqpConsumer, describe, type ConsumerHost, type DecodedBody } from './amqp-consumer.js';
import { DeferredDeletes, type DeleteAttempt } from './amqp-deferred-deletes.js';
import { backoffDelay } from './backoff.js';
import { isNotFound, isQueueNodeDown, ReplyCode, replyCode } from './broker-errors.js';
import { MARKER_HEADER } from './amqp-held-messages.js';
import { BodyDropReason, decodeMessageBody, DropReports, fingerprint, type DroppedBody } from './message-body.js';
import {
  BrokerOperationError,
  DEFAULT_RESUMABLE_PREFETCH,
  UnavailableError,
  type ConnectorEvents,
  type ConsumeOptions,
  type Consumer,
  type MessageHandler,
  type MqConnector,
  type ResumableConsumer,
  type ResumableHandler,
  type ResumableOptions,
  type ResumeOutcome,
} from './connector.js';

/** Bodies remembered for reuse by `decode`: enough to span the interleaving of a few messages' copies. */
const RECENT_BODIES = 8;

/** How often a resume looks whether the queue's previous consumer has gone. */
const TAKEOVER_POLL_MS = 100;

export interface AmqpConnectorOptions {
  /** Broker URLs, tried in turn (cluster nodes). */
  urls: readonly string[];
  /** The topic exchange; declared (durable), never deleted. */
  exchange: string;
  /** Prefix of transient queue names, e.g. `topicgate.<gateway-id>.`. */
  queuePrefix: string;
  /** Shown by `rabbitmqctl list_connections client_properties` and the management UI. */
  connectionName: string;
  /** AMQP heartbeat interval. Default: 15. */
  heartbeatSeconds?: number;
  /** Reconnect backoff bounds. Default: 200 ms doubling up to 10 s, with jitter. */
  reconnectDelayMs?: { initial: number; max: number };
  /** Consumers sharing one channel. Default: 100. */
  consumersPerChannel?: number;
  /** Idle channels kept open for declare/bind/delete: subscribes and unsubscribes run this many at once without opening a channel. Default: 8. */
  warmOperationChannels?: number;
  /** Channels for declare/bind/delete open at once. Default: 64. */
  maxOperationChannels?: number;
  /** Unacknowledged deliveries per resumable (or persistent) consumer: its window to the client. Default: DEFAULT_RESUMABLE_PREFETCH. */
  resumablePrefetch?: number;
  log: Logger;
}

/**
 * The exchange exists with another type or durability. Every node of a
 * cluster shares it, so trying other URLs cannot help: an operator must act.
 * It is an UnavailableError all the same: the gateway serves as unready and
 * keeps retrying, and the CLI prints the message rather than a stack.
 */
export class ExchangeConflictError extends UnavailableError {}

/** Every broker URL refused our credentials or vhost: an operator must fix TOPICGATE_AMQP_URL. */
export class BrokerRefusedError extends Error {
  override readonly name = 'BrokerRefusedError';
}

export class AmqpConnector extends EventEmitter<ConnectorEvents> implements MqConnector, ConsumerHost {
  readonly kind = 'amqp';
  private connection: ChannelModel | null = null;
  private channelSet: ChannelSet | null = null;
  /**
   * Connected and every consumer of the connection before recovered: what
   * /readyz reports. A gateway that answers ready while subscriptions are still
   * being declared again would be sent traffic it drops.
   */
  private recovered = false;
  private readonly consumers = new Set<AmqpConsumer>();
  private urlIndex = 0;
  private counter = 0;
  private closing = false;
  private reconnectTimer: NodeJS.Timeout | null = null;
  /** The last bodies decoded, newest first, with their bytes and content_encoding (see `decode`). */
  private readonly recentBodies: Array<{ content: Buffer; encoding: unknown; decoded: DecodedBody }> = [];
  private readonly dropReports = new DropReports();
  private readonly deferredDeletes: DeferredDeletes;

  private constructor(readonly options: AmqpConnectorOptions) {
    super();
    this.deferredDeletes = new DeferredDeletes((queue) => this.tryDelete(queue), options.log);
  }

  /**
   * Connects to the first reachable URL and declares the exchange. Throws if
   * none is reachable — unless `keepTrying`, for a long-running gateway that
   * should come up unready (readyz 503) and connect once the broker is there.
   */
  static async connect(options: AmqpConnectorOptions, { keepTrying = false } = {}): Promise<AmqpConnector> {
    if (options.urls.length === 0) throw new Error('no AMQP URL given');
    const connector = new AmqpConnector(options);
    try {
      await connector.open();
      connector.recovered = true; // no consumer yet: nothing to recover
    } catch (err) {
      // Credentials or a vhost every node refuses will not fix themselves: fail now, with the reason.
      if (!keepTrying || err instanceof BrokerRefusedError) throw err;
      const what = err instanceof ExchangeConflictError ? 'the exchange cannot be declared' : 'the broker is unreachable at start';
      options.log.error({ err: describe(err) }, `${what}; serving as unready (/readyz 503) and retrying`);
      connector.scheduleReconnect(0);
    }
    return connector;
  }

  get isUp(): boolean {
    return this.channelSet !== null && this.recovered;
  }

  /** Open channels on our connection, as the broker counts them (for metrics). */
  get channelCount(): number {
    return this.channelSet?.channelCount ?? 0;
  }

  // ConsumerHost
  get channels(): ChannelSet | null {
    return this.channelSet;
  }
  get exchange(): string {
    return this.options.exchange;
  }
  get log(): Logger {
    return this.options.log;
  }
  get heartbeatSeconds(): number {
    return this.options.heartbeatSeconds ?? 15;
  }
  forget(consumer: AmqpConsumer): void {
    this.consumers.delete(consumer);
  }

  deleteWhenNodeReturns(queue: string, forMs: number): void {
    this.deferredDeletes.add(queue, forMs);
  }

  private async tryDelete(queue: string): Promise<DeleteAttempt> {
    const channels = this.channelSet;
    if (!channels) return 'unreachable';
    try {
      // Unless consumed: a client that missed the renewal may have resumed it meanwhile (its node was cut off, not restarted).
      await channels.withOperationChannel((ch) => ch.deleteQueue(queue, { ifUnused: true }));
      this.options.log.info({ queue }, 'deleted a resumable queue whose node had been down');
      return 'done';
    } catch (err) {
      if (isNotFound(err, 'queue', queue) || replyCode(err) === ReplyCode.PreconditionFailed) return 'done';
      if (!isQueueNodeDown(err, queue)) this.options.log.warn({ queue, err: describe(err) }, 'could not delete a resumable queue whose node had been down; trying again');
      return 'unreachable';
    }
  }

  /**
   * A message bound for N subscriptions arrives N times, once per queue: in a
   * row on a shared channel, interleaved with its neighbours when each queue
   * has a channel of its own (resumable subscriptions). Compare bytes (a
   * memcmp) and content_encoding with the last few bodies and reuse a
   * decoding instead of decoding and parsing the same JSON N times. A body
   * that cannot be relayed (message-body.ts) gives null; it is logged and
   * counted once per message, not once per queue it reached.
   */
  decode(msg: ConsumeMessage, queue: string): DecodedBody | null {
    const { content, properties } = msg;
    const encoding: unknown = properties.contentEncoding;
    // Only relayable bodies are cached, and a compression header never is one.
    const cacheable = properties.headers?.compression === undefined;
    if (cacheable) {
      for (const recent of this.recentBodies) {
        if (recent.encoding === encoding && recent.content.equals(content)) return recent.decoded;
      }
    }
    const result = decodeMessageBody(content, properties);
    if (!result.ok) {
      this.reportDrop(msg, queue, result);
      return null;
    }
    const decoded = { json: result.json, body: result.body };
    this.recentBodies.unshift({ content, encoding, decoded });
    if (this.recentBodies.length > RECENT_BODIES) this.recentBodies.pop();
    return decoded;
  }

  /**
   * One warning per dropped message, without its content: what it was (key,
   * size, content type and encoding), why, and what its publisher must do.
   */
  private reportDrop(msg: ConsumeMessage, queue: string, drop: DroppedBody): void {
    const { fields, properties, content } = msg;
    if (!this.dropReports.firstCopy(fingerprint(fields.routingKey, content, properties), queue)) return;
    this.options.log.warn(
      {
        key: fields.routingKey,
        bytes: content.length,
        contentType: properties.contentType,
        contentEncoding: properties.contentEncoding,
        reason: drop.reason,
        detail: drop.detail,
      },
      DROP_MESSAGES[drop.reason],
    );
    this.emit('dropped', drop.reason);
  }

  async produce(key: string, body: PublishableBody): Promise<void> {
    const keyError = routingKeyError(key);
    if (keyError) throw new TypeError(keyError);
    const content = Buffer.from(encodeBody(body));
    const channels = this.requireChannels();
    const channel = await channels.publisher();
    await new Promise<void>((resolve, reject) => {
      channel.publish(this.options.exchange, key, content, { contentType: 'application/json', persistent: true }, (err) => {
        if (!err) return resolve();
        const reason = channels.closeReason(channel) ?? err; // "channel closed" alone does not say why
        reject(new BrokerOperationError(`the broker did not confirm the message to "${key}": ${describe(reason)}`));
      });
    });
  }

  async startConsuming(pattern: string, handler: MessageHandler, options: ConsumeOptions = {}): Promise<Consumer> {
    const queue = options.persistentName ?? `${this.options.queuePrefix}${options.name ?? `c${(++this.counter).toString(36)}`}`;
    const kind = options.persistentName === undefined ? 'transient' : 'persistent';
    return this.started(new AmqpConsumer(this, pattern, queue, { kind, handler, options }));
  }

  get hasResumableCapacity(): boolean {
    return this.channelSet?.roomForDedicated ?? true;
  }

  startResumable(pattern: string, handler: ResumableHandler, options: ResumableOptions): Promise<ResumableConsumer> {
    return this.started(new AmqpConsumer(this, pattern, options.queue, { kind: 'resumable', handler, options }));
  }

  private async started(consumer: AmqpConsumer): Promise<AmqpConsumer> {
    await consumer.start(this.requireChannels());
    // The broker can cancel it in the same read that confirmed the consume: an ended consumer is not ours to keep.
    if (!consumer.hasStopped) this.consumers.add(consumer);
    return consumer;
  }

  /**
   * Waits (bounded) until no consumer holds the queue — a departed gateway's
   * goes when it detaches, or when the broker reaps its connection — then
   * judges what the queue holds before consuming it (docs/protocol.md §15.5).
   */
  async resumeConsuming(pattern: string, handler: ResumableHandler, options: ResumableOptions): Promise<ResumeOutcome> {
    const channels = this.requireChannels();
    const { queue, maxBacklog } = options;
    const deadline = Date.now() + this.takeoverWaitMs;
    let found: { messageCount: number; consumerCount: number };
    for (;;) {
      try {
        found = await channels.withOperationChannel((ch) => ch.checkQueue(queue));
      } catch (err) {
        if (isNotFound(err, 'queue', queue)) return { kind: 'missing' };
        throw this.channelSet === channels ? new BrokerOperationError(`could not look up the queue to resume: ${describe(err)}`, replyCode(err)) : new UnavailableError('the broker connection was lost while resuming; retry shortly');
      }
      if (found.consumerCount === 0) break;
      if (Date.now() > deadline) return this.discard(channels, queue, 'busy');
      await new Promise((resolve) => setTimeout(resolve, TAKEOVER_POLL_MS));
    }
    // The marker counts: an empty queue lost it. A full one refused messages.
    if (found.messageCount === 0) return this.discard(channels, queue, 'lost');
    if (found.messageCount >= maxBacklog) return this.discard(channels, queue, 'overflow');
    const consumer = new AmqpConsumer(this, pattern, queue, { kind: 'resumable', handler, options });
    const verdict = await consumer.resume(channels, Math.max(deadline - Date.now(), TAKEOVER_POLL_MS * 10));
    if (verdict !== 'intact') {
      await consumer.stopConsuming(); // cancels, drops what it holds, deletes the queue
      return { kind: verdict };
    }
    if (!consumer.hasStopped) this.consumers.add(consumer);
    return { kind: 'resumed', consumer, backlog: found.messageCount - 1, window: this.prefetch - 1 };
  }

  async abandonResumable(queue: string): Promise<void> {
    const channels = this.channelSet;
    if (!channels) return;
    await channels.withOperationChannel((ch) => ch.deleteQueue(queue, { ifUnused: true })).catch((err: unknown) => {
      // In use (406, its holder keeps it) or already gone (404): nothing to do. Otherwise the window deletes it.
      if (replyCode(err) === ReplyCode.PreconditionFailed || isNotFound(err, 'queue', queue)) return;
      this.options.log.warn({ queue, err: describe(err) }, 'could not delete a resumable queue whose resume was refused; the broker deletes it once unused for the resume window');
    });
  }

  private get prefetch(): number {
    return this.options.resumablePrefetch ?? DEFAULT_RESUMABLE_PREFETCH;
  }

  /** How long a resume waits for another consumer of the queue to go: a dead connection is reaped within about 3 heartbeats. */
  private get takeoverWaitMs(): number {
    return Math.max(3 * this.heartbeatSeconds, 5) * 1000;
  }

  private async discard(channels: ChannelSet, queue: string, kind: 'lost' | 'overflow' | 'busy'): Promise<ResumeOutcome> {
    await channels.withOperationChannel((ch) => ch.deleteQueue(queue)).catch((err: unknown) => {
      this.options.log.warn({ queue, err: describe(err) }, 'could not delete a resumable queue; the broker deletes it once unused for the resume window');
    });
    return { kind };
  }

  async publishMarker(queue: string): Promise<void> {
    const channels = this.requireChannels();
    const channel = await channels.publisher();
    await new Promise<void>((resolve, reject) => {
      // Non-persistent on purpose: it survives exactly as long as the queue's other non-persistent messages.
      channel.publish('', queue, Buffer.from('{}'), { persistent: false, headers: { [MARKER_HEADER]: queue } }, (err) => {
        if (err) reject(new BrokerOperationError(`the broker did not confirm a resumable queue's marker: ${describe(channels.closeReason(channel) ?? err)}`));
        else resolve();
      });
    });
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.deferredDeletes.close();
    const consumers = [...this.consumers];
    await Promise.allSettled(consumers.map((c) => c.stopConsuming()));
    for (const consumer of consumers) consumer.options.onEnd?.('closed', 'the connector was closed');
    const connection = this.connection;
    this.connection = null;
    this.recovered = false;
    this.channelSet?.dispose();
    this.channelSet = null;
    if (connection) await connection.close().catch(() => undefined);
  }

  private requireChannels(): ChannelSet {
    if (!this.channelSet) throw new UnavailableError('the broker connection is down; retry shortly');
    return this.channelSet;
  }

  /** Tries every URL once, starting with the one that worked last. */
  private async open(): Promise<void> {
    const { urls, log } = this.options;
    const failures: string[] = [];
    const refusals: string[] = [];
    for (let tried = 0; tried < urls.length; tried++) {
      const url = urls[this.urlIndex]!;
      let connection: ChannelModel | null = null;
      try {
        connection = await amqp.connect(withHeartbeat(url, this.heartbeatSeconds), {
          clientProperties: { connection_name: this.options.connectionName },
        });
        const opened = connection;
        connection.on('error', (err: Error) => log.warn({ err: describe(err) }, 'broker connection error'));
        connection.on('blocked', (reason: string) => log.warn({ reason }, 'the broker is blocking publishes (resource alarm); publishes will wait'));
        connection.on('close', (err?: Error) => this.onConnectionClosed(opened, err));
        const channels = new ChannelSet(connection, {
          consumersPerChannel: this.options.consumersPerChannel ?? 100,
          warmOperationChannels: this.options.warmOperationChannels ?? 8,
          maxOperationChannels: this.options.maxOperationChannels ?? 64,
          prefetch: this.prefetch,
        }, log);
        await channels.warmUp();
        await this.declareExchange(channels);
        if (this.closing) {
          // close() ran while we were connecting: nobody else will close this connection.
          await connection.close().catch(() => undefined);
          return;
        }
        this.connection = connection;
        this.channelSet = channels;
        log.info({ url: redact(url), exchange: this.options.exchange }, 'connected to the broker');
        return;
      } catch (err) {
        await connection?.close().catch(() => undefined);
        if (err instanceof ExchangeConflictError) throw err;
        const refused = refusal(url, err);
        if (refused) refusals.push(refused);
        failures.push(`${redact(url)}: ${refused ?? describe(err)}`);
        this.urlIndex = (this.urlIndex + 1) % urls.length;
      }
    }
    if (refusals.length === urls.length) throw new BrokerRefusedError(refusals.join('; '));
    throw new UnavailableError(`could not connect to the broker (${failures.join('; ')}); check TOPICGATE_AMQP_URL and that RabbitMQ is running`);
  }

  /** Declaring is always safe and creates the exchange on a fresh broker; it fails only if one of another kind is in the way. */
  private async declareExchange(channels: ChannelSet): Promise<void> {
    const { exchange } = this.options;
    try {
      await channels.withOperationChannel((ch) => ch.assertExchange(exchange, 'topic', { durable: true }));
    } catch (err) {
      if (replyCode(err) !== ReplyCode.PreconditionFailed) throw err;
      throw new ExchangeConflictError(
        `the exchange "${exchange}" exists on the broker but is not the durable topic exchange topicgate needs (${describe(err)}). ` +
          `Set TOPICGATE_EXCHANGE to another name, or delete the exchange "${exchange}" (if nothing else uses it) so topicgate can declare it`,
      );
    }
  }

  private onConnectionClosed(connection: ChannelModel, err?: Error): void {
    if (this.connection !== connection) return;
    this.connection = null;
    this.recovered = false;
    this.channelSet?.dispose();
    this.channelSet = null;
    if (this.closing) return;
    const error = err ?? new Error('the broker closed the connection');
    this.options.log.error({ err: describe(error), consumers: this.consumers.size }, 'lost the broker connection; reconnecting');
    this.emit('down', error);
    this.scheduleReconnect(0);
  }

  private scheduleReconnect(attempt: number): void {
    if (this.closing) return;
    const { initial, max } = this.options.reconnectDelayMs ?? { initial: 200, max: 10_000 };
    this.reconnectTimer = setTimeout(() => void this.reconnect(attempt), backoffDelay(attempt, initial, max));
  }

  private async reconnect(attempt: number): Promise<void> {
    this.reconnectTimer = null;
    if (this.closing) return;
    try {
      await this.open();
    } catch (err) {
      // An exchange in the way, or refused credentials, need an operator, not patience: say so at error.
      if (err instanceof ExchangeConflictError || err instanceof BrokerRefusedError) this.options.log.error({ attempt: attempt + 1, err: err.message }, 'the broker refuses the gateway; will retry');
      else this.options.log.warn({ attempt: attempt + 1, err: describe(err) }, 'reconnect failed; will retry');
      this.scheduleReconnect(attempt + 1);
      return;
    }
    if (this.closing) return; // closed while connecting; open() closed what it opened
    // Declare every live consumer's queue again under the same name; each may have lost messages meanwhile.
    const channels = this.channelSet!;
    await Promise.all([...this.consumers].map((consumer) => consumer.restart(channels)));
    // Lost again, or closed, while recovering: the next reconnect recovers and reports.
    if (this.closing || this.channelSet !== channels) return;
    this.recovered = true;
    this.options.log.info({ consumers: this.consumers.size }, 'broker connection re-established; every consumer recovered');
    this.emit('reconnected');
  }
}

/**
 * The broker answered and refused us: wrong credentials, or a vhost that does
 * not exist or that the user may not use. Retrying cannot help; the message
 * says what to fix. (amqplib loses the reply text of a refused vhost, so the
 * vhost is named from the URL.)
 */
function refusal(url: string, err: unknown): string | null {
  const message = describe(err);
  const parsed = new URL(url);
  const user = decodeURIComponent(parsed.username || 'guest');
  if (/ACCESS_REFUSED - Login was refused/.test(message)) {
    return `${redact(url)}: the broker refused the login of user "${user}": check the user name and password in TOPICGATE_AMQP_URL`;
  }
  if (/Expected ConnectionOpenOk; got <ConnectionClose/.test(message)) {
    const vhost = parsed.pathname.length > 1 ? decodeURIComponent(parsed.pathname.slice(1)) : '/';
    return (
      `${redact(url)}: the broker refused to open virtual host "${vhost}" for user "${user}": it does not exist or the user has no permissions on it ` +
      `(rabbitmqctl add_vhost ${vhost}; rabbitmqctl set_permissions -p ${vhost} ${user} ".*" ".*" ".*"), or fix the vhost in TOPICGATE_AMQP_URL`
    );
  }
  return null;
}

/** The warning for a dropped message: the same line for every message dropped for one reason; the details are in its fields. */
const DROP_MESSAGES: Record<BodyDropReason, string> = {
  [BodyDropReason.NotJson]: 'dropped a message whose body is not JSON: its publisher must send a JSON object (docs/protocol.md §11)',
  [BodyDropReason.NotAnObject]: 'dropped a message whose body is JSON but not an object: its publisher must send a JSON object (docs/protocol.md §11)',
  [BodyDropReason.InvalidText]:
    'dropped a message whose body is not valid text in its encoding: its publisher must send a JSON object in UTF-8, or name the encoding it uses in content_encoding (docs/protocol.md §11)',
  [BodyDropReason.UnsupportedEncoding]:
    'dropped a message with a content encoding topicgate cannot decode: its publisher must send a JSON object uncompressed, in UTF-8 or an encoding named in content_encoding (docs/protocol.md §11)',
};

/** A `heartbeat` in the URL itself wins: operators may tune it per node. */
function withHeartbeat(url: string, seconds: number): string {
  const parsed = new URL(url);
  if (!parsed.searchParams.has('heartbeat')) parsed.searchParams.set('heartbeat', String(seconds));
  return parsed.toString();
}

/** Never log a password. */
function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '<unparseable URL>';
  }
}
