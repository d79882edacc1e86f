/**
 * The demo's chaos, between its publisher and the broker: with chaos on,
 * every message is sent after a random delay (so messages overtake each
 * other) and some are sent twice (as a retrying publisher would; on RabbitMQ
 * with the same message_id). It never drops one: the SDK must cope with disorder and
 * repetition, and the REST API fills any gap it perceives.
 */
import type { OutgoingMessage, PublisherTransport, TransportLink } from '@topicgate/publisher';

export interface ChaosSettings {
  enabled: boolean;
  /** Longest extra delay in ms. Default: 400. */
  maxDelayMs?: number;
  /** Share of messages sent twice. Default: 0.1. */
  duplicateRate?: number;
}

export class ChaosTransport implements PublisherTransport {
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(
    private readonly inner: PublisherTransport,
    /** Read at every send: `POST /api/chaos` switches it while the demo runs. */
    public chaos: ChaosSettings,
  ) {}

  get description(): string {
    return this.inner.description;
  }

  async open(): Promise<TransportLink> {
    const link = await this.inner.open();
    return {
      where: link.where,
      send: (message) => (this.chaos.enabled ? this.scramble(link, message) : link.send(message)),
      onFailure: (listener) => link.onFailure(listener),
      close: () => link.close(),
    };
  }

  /** Drops the delayed sends still waiting (the demo is stopping). */
  stop(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }

  /** Confirmed once every copy is. */
  private async scramble(link: TransportLink, message: OutgoingMessage): Promise<void> {
    const copies = Math.random() < (this.chaos.duplicateRate ?? 0.1) ? 2 : 1;
    await Promise.all(Array.from({ length: copies }, () => this.later(() => link.send(message))));
  }

  private later(send: () => Promise<void>): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        send().then(resolve, reject);
      }, Math.random() * (this.chaos.maxDelayMs ?? 400));
      this.timers.add(timer);
    });
  }
}
