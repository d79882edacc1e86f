/**
 * A resumable queue of the embedded broker: the same contract as RabbitMQ's
 * (docs/protocol.md §15.5) within one process. Deliveries stay unsettled
 * until the gateway settles them, at most `window` at a time (RabbitMQ's
 * prefetch, less the marker); a detach puts them back ahead of what waited, marked
 * redelivered; the queue is dropped once unused for `expiresMs`; a backlog
 * that reaches `maxBacklog` refuses messages, and the queue is renewed (a
 * connected consumer) or judged `overflow` (a resume). Nothing here can lose
 * messages the way a broker restart does, so a resume is never `lost`.
 */
import type { HeldDelivery, MqMessage, ResumableConsumer, ResumableHandler, ResumableOptions } from './connector.js';

export interface QueuedMessage {
  key: string;
  text: string;
  size: number;
}

interface Entry {
  message: QueuedMessage;
  redelivered: boolean;
}

export interface ResumableQueueHost {
  /** Unsettled deliveries per consumer, as RabbitMQ's prefetch (less the marker) bounds them. */
  readonly window: number;
  remove(): void;
  rename(name: string): void;
  decode(message: QueuedMessage): MqMessage;
  warn(message: string, detail: Record<string, unknown>): void;
}

export class EmbeddedResumableQueue {
  /** Waiting, oldest first. */
  private backlog: Entry[] = [];
  /** Delivered and not settled, oldest first. */
  private unsettled: Entry[] = [];
  private consumer: AttachedConsumer | null = null;
  /** Bumped whenever what was delivered stops counting (detach, renewal): older settles become no-ops. */
  private generation = 0;
  private expiry: NodeJS.Timeout | null = null;
  /** A message was refused since the last renewal: the queue no longer holds a gapless prefix. */
  private refused = false;
  private current: string;

  constructor(
    private readonly options: ResumableOptions,
    private readonly host: ResumableQueueHost,
  ) {
    this.current = options.queue;
  }

  /** The queue's name now (a renewal changes it). */
  get name(): string {
    return this.current;
  }

  get backlogSize(): number {
    return this.backlog.length;
  }

  offer(message: QueuedMessage): void {
    if (this.backlog.length >= this.options.maxBacklog) {
      this.refused = true;
      if (this.consumer) this.renew();
      return;
    }
    this.backlog.push({ message, redelivered: false });
    this.pump();
  }

  /** What a resume finds: intact, or a backlog that overflowed (or a consumer still attached). */
  judge(): 'intact' | 'overflow' | 'busy' {
    if (this.consumer) return 'busy';
    return this.refused || this.backlog.length >= this.options.maxBacklog ? 'overflow' : 'intact';
  }

  attach(handler: ResumableHandler): ResumableConsumer {
    if (this.expiry) clearTimeout(this.expiry);
    this.expiry = null;
    const consumer = new AttachedConsumer(this, handler, this.options);
    this.consumer = consumer;
    queueMicrotask(() => this.pump());
    return consumer;
  }

  /** The consumer leaves; what it held goes back ahead of what waited. */
  detach(consumer: AttachedConsumer): void {
    if (this.consumer !== consumer) return;
    this.consumer = null;
    this.generation++;
    this.backlog = [...this.unsettled.map((entry) => ({ ...entry, redelivered: true })), ...this.backlog];
    this.unsettled = [];
    this.expiry = setTimeout(() => this.dispose(), this.options.expiresMs);
    this.expiry.unref();
  }

  /** Deleted: unsubscribed, expired, or judged incomplete. */
  dispose(): void {
    if (this.expiry) clearTimeout(this.expiry);
    this.expiry = null;
    this.consumer = null;
    this.generation++;
    this.backlog = [];
    this.unsettled = [];
    this.host.remove();
  }

  /** The embedded broker closed. */
  close(): void {
    const consumer = this.consumer;
    this.dispose();
    consumer?.options.onEnd?.('closed', 'the embedded broker was closed');
  }

  settle(generation: number, entry: Entry): void {
    if (generation !== this.generation) return;
    const at = this.unsettled.indexOf(entry);
    if (at < 0) return;
    this.unsettled.splice(at, 1);
    this.pump();
  }

  /** The client is too slow: start again empty under a new name, and say so. */
  private renew(): void {
    this.generation++;
    this.backlog = [];
    this.unsettled = [];
    this.refused = false;
    this.current = this.options.nextQueue();
    this.host.rename(this.current);
    this.host.warn('a resumable subscription\'s backlog is full (its client is too slow); replacing its queue and telling the client to reload', {});
    const consumer = this.consumer;
    queueMicrotask(() => consumer?.options.onRenew?.('overflow'));
  }

  /** Delivers what waits, on later microtasks as a broker would, within the window. */
  private pump(): void {
    const consumer = this.consumer;
    while (consumer && this.unsettled.length < this.host.window && this.backlog.length > 0) {
      const entry = this.backlog.shift()!;
      this.unsettled.push(entry);
      const generation = this.generation;
      queueMicrotask(() => {
        if (generation !== this.generation || this.consumer !== consumer) return;
        const delivery: HeldDelivery = { redelivered: entry.redelivered, settle: () => this.settle(generation, entry) };
        try {
          consumer.handler(this.host.decode(entry.message), delivery);
        } catch (err) {
          this.host.warn('a message handler threw; the message is dropped', { key: entry.message.key, err: String(err) });
        }
      });
    }
  }
}

class AttachedConsumer implements ResumableConsumer {
  private ended = false;

  constructor(
    private readonly queueState: EmbeddedResumableQueue,
    readonly handler: ResumableHandler,
    readonly options: ResumableOptions,
  ) {}

  get queue(): string {
    return this.queueState.name;
  }

  async stopConsuming(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    this.queueState.dispose();
  }

  async detach(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    this.queueState.detach(this);
  }

  async fence(): Promise<void> {}
}
