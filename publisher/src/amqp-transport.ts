/**
 * The default transport: RabbitMQ through amqplib, one connection and one
 * confirm channel per link. Each `open()` tries every URL once, starting with
 * the one that worked last (as the gateway does with TOPICGATE_AMQP_URL).
 */
import amqp, { type ChannelModel, type ConfirmChannel } from 'amqplib';
import { PublishErrorCode } from './codes.js';
import { describeError, PublishError } from './errors.js';
import type { OutgoingMessage, PublisherOptions, PublisherTransport, TransportLink } from './types.js';

/** The options of `createPublisher` that configure the AMQP transport; each is documented there, with its default. */
export type AmqpTransportOptions = Pick<PublisherOptions, 'urls' | 'exchange' | 'declareExchange' | 'connectionName' | 'heartbeatSeconds' | 'persistent'>;

/**
 * The transport `createPublisher` uses by default, for decorating it (count,
 * delay, log) and passing the result as `transport`.
 */
export function amqpTransport(options: AmqpTransportOptions): PublisherTransport {
  return new AmqpTransport({
    urls: urlList(options.urls),
    exchange: options.exchange ?? 'topicgate',
    declareExchange: options.declareExchange ?? true,
    connectionName: options.connectionName ?? 'topicgate publisher',
    heartbeatSeconds: options.heartbeatSeconds ?? 15,
    persistent: options.persistent ?? true,
  });
}

type Resolved = Required<Omit<AmqpTransportOptions, 'urls'>> & { urls: readonly string[] };

function urlList(urls: PublisherOptions['urls']): string[] {
  const list = typeof urls === 'string' ? urls.split(',') : [...(urls ?? [])];
  return list.map((url) => url.trim()).filter((url) => url !== '');
}

/** How long one URL may take to answer before the next is tried. */
const CONNECT_TIMEOUT_MS = 10_000;

class AmqpTransport implements PublisherTransport {
  readonly description: string;
  #urlIndex = 0;

  constructor(private readonly options: Resolved) {
    if (options.urls.length === 0) throw new TypeError('createPublisher: give `urls` (RabbitMQ URLs, e.g. amqp://guest:guest@127.0.0.1:5672) or a `transport`');
    for (const url of options.urls) {
      if (!/^amqps?:\/\//.test(url)) throw new TypeError(`createPublisher: broker URLs must start with amqp:// or amqps://, got "${redact(url)}"`);
    }
    this.description = `RabbitMQ at ${options.urls.map(redact).join(', ')}`;
  }

  async open(): Promise<TransportLink> {
    const { urls } = this.options;
    const failures: string[] = [];
    for (let tried = 0; tried < urls.length; tried++) {
      const url = urls[this.#urlIndex]!;
      let connection: ChannelModel | null = null;
      try {
        connection = await amqp.connect(withHeartbeat(url, this.options.heartbeatSeconds), {
          clientProperties: { connection_name: this.options.connectionName },
          timeout: CONNECT_TIMEOUT_MS,
        });
        // Without a listener an 'error' event would throw; the link reports the 'close' that follows.
        connection.on('error', () => undefined);
        const channel = await connection.createConfirmChannel();
        channel.on('error', () => undefined);
        if (this.options.declareExchange) await this.#declareExchange(channel);
        return new AmqpLink(connection, channel, redact(url), this.options);
      } catch (err) {
        await connection?.close().catch(() => undefined);
        failures.push(`${redact(url)}: ${describeError(err)}`);
        this.#urlIndex = (this.#urlIndex + 1) % urls.length;
      }
    }
    throw new Error(`could not publish to any broker (${failures.join('; ')}): check the URLs and that RabbitMQ is running there`);
  }

  async #declareExchange(channel: ConfirmChannel): Promise<void> {
    const { exchange } = this.options;
    try {
      await channel.assertExchange(exchange, 'topic', { durable: true });
    } catch (err) {
      if (/PRECONDITION_FAILED/.test(describeError(err))) {
        throw new Error(
          `the exchange "${exchange}" exists but is not the durable topic exchange the gateway uses (${describeError(err)}): ` +
            'publish to the gateway\'s exchange (TOPICGATE_EXCHANGE), or pass declareExchange: false',
        );
      }
      throw err;
    }
  }
}

class AmqpLink implements TransportLink {
  #failure: Error | null = null;
  #listeners: Array<(error: Error) => void> = [];
  /** Why the broker closed the channel ('error' precedes 'close'): "channel closed" alone says nothing. */
  #channelError: Error | null = null;

  constructor(
    private readonly connection: ChannelModel,
    private readonly channel: ConfirmChannel,
    readonly where: string,
    private readonly options: Resolved,
  ) {
    connection.on('close', (err?: Error) => this.#fail(err ?? new Error(`the broker closed the connection to ${where}`)));
    channel.on('error', (err: Error) => (this.#channelError = err));
    channel.on('close', () => this.#fail(this.#channelError ?? new Error(`the broker closed the channel on ${where}`)));
  }

  send(message: OutgoingMessage): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const { exchange, persistent } = this.options;
      const properties = {
        contentType: 'application/json',
        contentEncoding: 'utf-8',
        messageId: message.messageId,
        timestamp: message.timestamp,
        persistent,
      };
      try {
        // A false return (socket buffer full) is not waited on: amqplib queues the frames, and maxBuffered bounds them.
        this.channel.publish(exchange, message.key, Buffer.from(message.content, 'utf8'), properties, (err) => {
          if (!err) return resolve();
          // amqplib's only signal for basic.nack is this message; a closed channel fails its callbacks with "channel closed".
          if (err.message === 'message nacked') {
            return reject(
              new PublishError(
                PublishErrorCode.NotConfirmed,
                `the broker refused to confirm the message to "${message.key}" (basic.nack): a queue it was routed to refused it ` +
                  '(full, with x-overflow reject-publish) or the broker failed. Other queues may have it; publish it again only if a duplicate is harmless.',
              ),
            );
          }
          reject(this.#failure ?? this.#channelError ?? err);
        });
      } catch (err) {
        reject(err); // the channel is already closed: the link has failed
      }
    });
  }

  onFailure(listener: (error: Error) => void): void {
    if (this.#failure) listener(this.#failure);
    else this.#listeners.push(listener);
  }

  async close(): Promise<void> {
    this.#fail(new Error('closed'));
    await this.connection.close().catch(() => undefined);
  }

  #fail(error: Error): void {
    if (this.#failure) return;
    this.#failure = error;
    for (const listener of this.#listeners.splice(0)) listener(error);
  }
}

/** A `heartbeat` in the URL itself wins: operators may tune it per node. */
function withHeartbeat(url: string, seconds: number): string {
  const parsed = new URL(url);
  if (!parsed.searchParams.has('heartbeat')) parsed.searchParams.set('heartbeat', String(seconds));
  return parsed.toString();
}

/** Never show a password. */
export function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '<unparseable URL>';
  }
}
