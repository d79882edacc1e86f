/**
 * A resumable consumer's unacknowledged deliveries on its current channel:
 * its marker, and every delivery handed to the gateway and not yet settled.
 * Nothing here gives them back: the consumer's channel is its own, and
 * closing it returns them to the queue (amqp-channels.ts,
 * `reserveDedicatedSlot`).
 */
import type { ConsumeMessage } from 'amqplib';
import type { ConsumerSlot } from './amqp-channels.js';
import type { HeldDelivery } from './connector.js';

/** Header naming the queue a marker was published into (docs/protocol.md §15.5). */
export const MARKER_HEADER = 'x-topicgate-marker';

/**
 * A marker reaches its queue through the default exchange, addressed to the
 * queue by name: a message routed by the topic exchange cannot pass for one.
 */
export function isMarkerFor(msg: ConsumeMessage, queue: string): boolean {
  return msg.fields.exchange === '' && msg.fields.routingKey === queue && msg.properties.headers?.[MARKER_HEADER] === queue;
}

export class HeldMessages {
  private marker: ConsumeMessage | null = null;
  private readonly unsettled = new Map<number, ConsumeMessage>();
  /** Set once the consume is left: settling after that would name a tag the channel no longer holds for us. */
  private closed = false;

  constructor(readonly slot: ConsumerSlot) {}

  get hasMarker(): boolean {
    return this.marker !== null;
  }

  /** Deliveries handed over and not settled. */
  get count(): number {
    return this.unsettled.size;
  }

  holdMarker(msg: ConsumeMessage): void {
    this.marker = msg;
  }

  hold(msg: ConsumeMessage): HeldDelivery {
    const tag = msg.fields.deliveryTag;
    this.unsettled.set(tag, msg);
    return {
      redelivered: msg.fields.redelivered,
      settle: () => {
        if (this.closed || !this.unsettled.delete(tag) || !this.slot.pooled.usable) return;
        this.slot.channel.ack(msg);
      },
    };
  }

  /** The consume is over (its channel closes): settling now would name a tag the channel no longer holds. */
  close(): void {
    this.closed = true;
    this.marker = null;
    this.unsettled.clear();
  }
}
