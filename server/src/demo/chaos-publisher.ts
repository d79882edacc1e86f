/**
 * Publishes the demo's messages, optionally with chaos: random delays (so
 * messages overtake each other) and duplicates. It never drops a message:
 * the SDK must cope with disorder and repetition, and the REST API fills any
 * gap it perceives.
 */
import type { PublishableBody } from '@topicgate/shared';
import type { Logger } from '../log.js';
import type { MqConnector } from '../mq/connector.js';

export interface ChaosSettings {
  enabled: boolean;
  /** Longest extra delay in ms. Default: 400. */
  maxDelayMs?: number;
  /** Share of messages sent twice. Default: 0.1. */
  duplicateRate?: number;
}

export class ChaosPublisher {
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(
    private readonly mq: MqConnector,
    private readonly log: Logger,
    public chaos: ChaosSettings,
  ) {}

  publish(key: string, body: PublishableBody): void {
    if (!this.chaos.enabled) return this.send(key, body);
    const copies = Math.random() < (this.chaos.duplicateRate ?? 0.1) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        this.send(key, body);
      }, Math.random() * (this.chaos.maxDelayMs ?? 400));
      this.timers.add(timer);
    }
  }

  stop(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }

  private send(key: string, body: PublishableBody): void {
    // A lost message here is what the SDK's REST reload exists for; log it, never crash the demo.
    this.mq.produce(key, body).catch((err: unknown) => this.log.warn({ key, err: (err as Error).message }, 'demo publish failed'));
  }
}
