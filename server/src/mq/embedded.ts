/**
 * An in-process topic exchange for a single gateway with no broker, like
 * Buildbot's SimpleMQ. Bodies are serialised on produce and parsed per
 * delivery, so consumers see exactly what they would see through RabbitMQ
 * (Dates become epoch seconds, no shared mutable objects).
 */
import { EventEmitter } from 'node:events';
import { compilePattern, decodeBody, encodeBody, routingKeyError, type KeyMatcher, type PublishableBody } from '@topicgate/shared';
import type {
  ConnectorEvents,
  ConsumeOptions,
  Consumer,
  MessageHandler,
  MqConnector,
  MqMessage,
  ResumableConsumer,
  ResumableHandler,
  ResumableOptions,
  ResumeOutcome,
} from './connector.js';
import { DEFAULT_RESUMABLE_PREFETCH, UnavailableError } from './connector.js';
import { EmbeddedResumableQueue, type QueuedMessage } from './embedded-resumable.js';

interface Queue {
  name: string;
  /** Binding patterns and their compiled matchers; binding twice is a no-op, as on RabbitMQ. */
  bindings: Map<string, KeyMatcher>;
  /** Messages waiting for a consumer (persistent queues only keep them). */
  backlog: Published[];
  consumers: EmbeddedConsumer[];
  /** Round-robin position among consumers sharing a persistent queue. */
  next: number;
  persistent: boolean;
  /** Set for a resumable queue: it keeps what its consumer has not settled, across detaches, for a while. */
  resumable?: EmbeddedResumableQueue;
}

/** A message as produced: its key, its JSON text, and that text's size in bytes (what RabbitMQ would report). */
interface Published {
  key: string;
  text: string;
  size: number;
}

interface EmbeddedConsumer extends Consumer {
  handler: MessageHandler;
  options: ConsumeOptions;
}

export interface EmbeddedConnectorOptions {
  /** Prefix of transient queue names. Default: `topicgate.embedded.`. */
  queuePrefix?: string;
  /** Where undeliverable or failing handlers are reported. Default: console.warn. */
  warn?: (message: string, detail: Record<string, unknown>) => void;
  /** Unsettled deliveries per resumable consumer, counted as RabbitMQ's prefetch is (the marker included). Default: DEFAULT_RESUMABLE_PREFETCH. */
  resumablePrefetch?: number;
}

/** How long a resume waits for the queue's current consumer to detach. */
const TAKEOVER_WAIT_MS = 5_000;

export class EmbeddedConnector extends EventEmitter<ConnectorEvents> implements MqConnector {
  readonly kind = 'embedded';
  private readonly queues = new Map<string, Queue>();
  private readonly prefix: string;
  private readonly warn: NonNullable<EmbeddedConnectorOptions['warn']>;
  private readonly resumableWindow: number;
  private closed = false;
  private counter = 0;

  constructor(options: EmbeddedConnectorOptions = {}) {
    super();
    this.prefix = options.queuePrefix ?? 'topicgate.embedded.';
    this.warn = options.warn ?? ((message, detail) => console.warn(message, detail));
    this.resumableWindow = (options.resumablePrefetch ?? DEFAULT_RESUMABLE_PREFETCH) - 1;
  }

  get isUp(): boolean {
    return !this.closed;
  }

  async produce(key: string, body: PublishableBody): Promise<void> {
    if (this.closed) throw new UnavailableError('the embedded broker is closed');
    const keyError = routingKeyError(key);
    if (keyError) throw new TypeError(keyError);
    const text = encodeBody(body);
    const published: Published = { key, text, size: Buffer.byteLength(text, 'utf8') };
    for (const queue of this.queues.values()) {
      for (const matches of queue.bindings.values()) {
        if (matches(key)) {
          this.enqueue(queue, published);
          break;
        }
      }
    }
  }

  async startConsuming(pattern: string, handler: MessageHandler, options: ConsumeOptions = {}): Promise<Consumer> {
    if (this.closed) throw new UnavailableError('the embedded broker is closed');
    const persistent = options.persistentName !== undefined;
    const name = options.persistentName ?? `${this.prefix}${options.name ?? `c${(++this.counter).toString(36)}`}`;
    let queue = this.queues.get(name);
    if (!queue) {
      queue = { name, bindings: new Map(), backlog: [], consumers: [], next: 0, persistent };
      this.queues.set(name, queue);
    } else if (!persistent) {
      throw new Error(`queue ${name} already exists; transient consumer names must be unique`);
    }
    if (!queue.bindings.has(pattern)) queue.bindings.set(pattern, compilePattern(pattern));
    const owner = queue;
    const consumer: EmbeddedConsumer = {
      queue: name,
      handler,
      options,
      stopConsuming: async () => {
        owner.consumers = owner.consumers.filter((c) => c !== consumer);
        if (!owner.persistent) this.queues.delete(owner.name);
      },
    };
    queue.consumers.push(consumer);
    this.drainBacklog(queue);
    return consumer;
  }

  /** In memory: no channel to run out of. */
  readonly hasResumableCapacity = true;

  async startResumable(pattern: string, handler: ResumableHandler, options: ResumableOptions): Promise<ResumableConsumer> {
    if (this.closed) throw new UnavailableError('the embedded broker is closed');
    const queue = this.addResumableQueue(pattern, options);
    return queue.resumable!.attach(handler);
  }

  async resumeConsuming(_pattern: string, handler: ResumableHandler, options: ResumableOptions): Promise<ResumeOutcome> {
    if (this.closed) throw new UnavailableError('the embedded broker is closed');
    const queue = this.queues.get(options.queue);
    if (!queue?.resumable) return { kind: 'missing' };
    // A takeover disconnects the holder's socket; its detach follows within a few turns of the event loop.
    const deadline = Date.now() + TAKEOVER_WAIT_MS;
    while (queue.resumable.judge() === 'busy' && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    if (this.queues.get(options.queue) !== queue) return { kind: 'missing' };
    const outcome = queue.resumable.judge();
    if (outcome !== 'intact') {
      this.queues.delete(queue.name);
      queue.resumable.dispose();
      return { kind: outcome };
    }
    const backlog = queue.resumable.backlogSize;
    return { kind: 'resumed', consumer: queue.resumable.attach(handler), backlog, window: this.resumableWindow };
  }

  async abandonResumable(name: string): Promise<void> {
    const queue = this.queues.get(name);
    if (!queue?.resumable || queue.resumable.judge() === 'busy') return;
    this.queues.delete(name);
    queue.resumable.dispose();
  }

  private addResumableQueue(pattern: string, options: ResumableOptions): Queue {
    const queue: Queue = { name: options.queue, bindings: new Map([[pattern, compilePattern(pattern)]]), backlog: [], consumers: [], next: 0, persistent: true };
    queue.resumable = new EmbeddedResumableQueue(options, {
      remove: () => {
        if (this.queues.get(queue.name) === queue) this.queues.delete(queue.name);
      },
      // Renewal: the same bindings under the new name, empty.
      rename: (name) => {
        this.queues.delete(queue.name);
        queue.name = name;
        this.queues.set(name, queue);
      },
      decode: (published) => this.toMessage(published),
      warn: this.warn,
      window: this.resumableWindow,
    });
    if (this.queues.has(queue.name)) throw new Error(`queue ${queue.name} already exists; resumable queue names must be unique`);
    this.queues.set(queue.name, queue);
    return queue;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const queues = [...this.queues.values()];
    const consumers = queues.flatMap((q) => q.consumers);
    this.queues.clear();
    for (const consumer of consumers) consumer.options.onEnd?.('closed', 'the embedded broker was closed');
    for (const queue of queues) queue.resumable?.close();
  }

  private toMessage({ key, text, size }: QueuedMessage): MqMessage {
    return { key, body: decodeBody(text), json: text, size };
  }

  private enqueue(queue: Queue, published: Published): void {
    if (queue.resumable) return queue.resumable.offer(published);
    const consumer = this.pickConsumer(queue);
    if (consumer) this.deliver(consumer, published);
    else if (queue.persistent) queue.backlog.push(published);
  }

  private drainBacklog(queue: Queue): void {
    const waiting = queue.backlog.splice(0);
    for (const published of waiting) this.enqueue(queue, published);
  }

  private pickConsumer(queue: Queue): EmbeddedConsumer | undefined {
    if (queue.consumers.length === 0) return undefined;
    queue.next = (queue.next + 1) % queue.consumers.length;
    return queue.consumers[queue.next];
  }

  /** Delivers on a later microtask, as a broker would, never inside `produce`'s caller. */
  private deliver(consumer: EmbeddedConsumer, { key, text, size }: Published): void {
    queueMicrotask(() => {
      const message: MqMessage = { key, body: decodeBody(text), json: text, size };
      try {
        const result = consumer.handler(message);
        if (result instanceof Promise) result.catch((err: unknown) => this.reportHandlerError(consumer, key, err));
      } catch (err) {
        this.reportHandlerError(consumer, key, err);
      }
    });
  }

  private reportHandlerError(consumer: Consumer, key: string, err: unknown): void {
    this.warn('a message handler threw; the message is dropped', { queue: consumer.queue, key, err: String(err) });
  }
}
