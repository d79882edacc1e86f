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

/**
 * Settles are written cumulatively: one `basic.ack` with `multiple` per
 * flush instead of one per delivery. The channel is the consumer's own, so
 * `multiple` reaches no one else's deliveries — but it would reach the
 * marker, whose tag is the oldest. So a flush first hands the marker back
 * (`nack`, requeue): it returns to the head of the queue and comes straight
 * back under a new, newer tag, which the `ack` that follows cannot cover. The
 * broker handles a channel's frames in order, so the marker is never acked.
 */
/** Settles acknowledged one by one rather than cumulatively. */
const ONE_BY_ONE = 4;

export class HeldMessages {
  private marker: ConsumeMessage | null = null;
  /** The marker was delivered on this consume (it may be on its way back after a flush). */
  private markerSeen = false;
  private readonly unsettled = new Map<number, ConsumeMessage>();
  /** Settled and not yet acknowledged to the broker, oldest first (settles come oldest first). */
  private settled: ConsumeMessage[] = [];
  /** Set once the consume is left: settling after that would name a tag the channel no longer holds for us. */
  private closed = false;

  constructor(readonly slot: ConsumerSlot) {}

  get hasMarker(): boolean {
    return this.markerSeen;
  }

  /** Deliveries handed over and not settled. */
  get count(): number {
    return this.unsettled.size;
  }

  holdMarker(msg: ConsumeMessage): void {
    this.marker = msg;
    this.markerSeen = true;
  }

  hold(msg: ConsumeMessage): HeldDelivery {
    const tag = msg.fields.deliveryTag;
    this.unsettled.set(tag, msg);
    return {
      redelivered: msg.fields.redelivered,
      settle: () => {
        if (this.closed || !this.unsettled.delete(tag)) return;
        this.settled.push(msg);
      },
    };
  }

  /**
   * Acknowledges to the broker what was settled since the last flush;
   * `fence()` then confirms the broker has it. A few are acknowledged one by
   * one: handing the marker back costs the broker a requeue and a delivery.
   */
  flush(): void {
    const settled = this.settled;
    this.settled = [];
    if (this.closed || settled.length === 0 || !this.slot.pooled.usable) return;
    const channel = this.slot.channel;
    if (settled.length <= ONE_BY_ONE || !this.marker) {
      // Without the marker in hand (on its way back), `multiple` is unsafe: it may still hold an older tag.
      for (const msg of settled) channel.ack(msg);
      return;
    }
    channel.nack(this.marker, false, true);
    this.marker = null;
    channel.ack(settled[settled.length - 1]!, true);
  }

  /** The consume is over (its channel closes): settling now would name a tag the channel no longer holds. */
  close(): void {
    this.closed = true;
    this.marker = null;
    this.settled = [];
    this.unsettled.clear();
  }
}
