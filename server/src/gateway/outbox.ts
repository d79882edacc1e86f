/**
 * The hot path's last step, and where a slow client is kept from growing the
 * gateway's memory.
 *
 * Deliveries for one socket are gathered and written as one `messages` frame.
 * The frame is built as text from each body's JSON exactly as published
 * (validated once by the connector), and handed to engine.io as an encoded
 * socket.io packet: no parse and re-stringify per delivery, which is most of
 * socket.io's cost at high fan-out. Standard socket.io clients decode it like
 * any `emit`.
 *
 * A frame is written only when the transport has finished the previous one
 * (its `drain`), so while a client reads slowly deliveries accumulate here —
 * making later frames bigger and cheaper — and this is the one place that
 * decides to drop. Past `limitBytes` of waiting deliveries the outbox drops
 * and remembers which subscriptions lost messages; once the transport drains
 * it tells each of them `resync { reason: "overflow" }`.
 *
 * Control events about a subscription (`resync`, `unsubscribed`, the
 * unsubscribe ack) go out through here too, behind the deliveries already
 * queued: engine.io keeps the order of what it is given, so a client never
 * sees a notice before the messages that preceded it.
 */
import { ResyncReason, ServerEvent, type ServerToClientEvents } from '@topicgate/shared';
import type { Socket } from 'socket.io';
import type { Metrics } from '../metrics.js';

/** What the outbox needs of a subscription. */
export interface Stream {
  readonly id: string;
  /** Sequence number of the last delivery relayed to the client. */
  seq: number;
  /** False once the subscription has started ending: no overflow resync is owed any more. */
  readonly relaying: boolean;
  /**
   * Its deliveries in flight are bounded before they get here (a resumable
   * subscription's broker prefetch): never dropped by the outbox, whose drops
   * a resume could not account for.
   */
  readonly bounded: boolean;
}

/** A socket.io EVENT packet (type 2) on the default namespace, as socket.io-parser encodes `emit('messages', [...])`. */
const FRAME_START = `2${JSON.stringify([ServerEvent.Messages]).slice(0, -1)},[`;
const FRAME_END = ']]';

/** The part of engine.io's transport the outbox listens to. */
interface Transport {
  on(event: 'drain', listener: () => void): unknown;
  off(event: 'drain', listener: () => void): unknown;
}

export class Outbox {
  /** Deliveries as JSON text: `{"id":…,"key":…,"body":…,"seq":…}`. */
  private batch: string[] = [];
  private batchBytes = 0;
  private scheduled = false;
  /** A frame is with the transport and it has not drained yet. */
  private inFlight = false;
  private readonly overflowed = new Map<string, Stream>();
  private transport: Transport | null = null;

  constructor(
    private readonly socket: Socket,
    private readonly metrics: Metrics,
    private readonly limitBytes: number,
  ) {
    this.watch(socket.conn.transport as unknown as Transport);
    socket.conn.on('upgrade', this.onUpgrade);
  }

  private readonly onUpgrade = (transport: unknown) => this.watch(transport as Transport);

  /** Queues one delivery for `stream` and returns its seq, or drops it (0) if this client is too far behind. */
  offer(stream: Stream, key: string, json: string): number {
    if (!stream.bounded && (this.batchBytes >= this.limitBytes || this.overflowed.has(stream.id))) {
      // Once a stream has lost one delivery it loses the rest until its resync,
      // so the client never applies messages across an unannounced gap.
      this.overflowed.set(stream.id, stream);
      this.metrics.drops.inc();
      return 0;
    }
    const seq = ++stream.seq;
    // Ids are ours (safe characters); keys come from publishers, so they are escaped.
    const delivery = `{"id":"${stream.id}","key":${JSON.stringify(key)},"body":${json},"seq":${seq}}`;
    this.batch.push(delivery);
    this.batchBytes += delivery.length;
    this.schedule();
    return seq;
  }

  /** Sends a control event behind every delivery queued so far. */
  emit<E extends typeof ServerEvent.Resync | typeof ServerEvent.Unsubscribed>(event: E, ...args: Parameters<ServerToClientEvents[E]>): void {
    this.writePending();
    this.socket.emit(event, ...args);
  }

  /** Writes the deliveries queued so far now, ahead of whatever the caller sends next (e.g. an ack). */
  writePending(): void {
    if (this.batch.length === 0 || !this.socket.connected) return;
    const batch = this.batch;
    this.metrics.deliveries.inc(batch.length);
    this.metrics.deliveredBytes.inc(this.batchBytes);
    this.batch = [];
    this.batchBytes = 0;
    this.inFlight = true;
    this.socket.conn.write(FRAME_START + batch.join(',') + FRAME_END);
  }

  /** Unhooks from the transport; pending deliveries are discarded with the socket. */
  dispose(): void {
    this.socket.conn.off('upgrade', this.onUpgrade);
    this.transport?.off('drain', this.onDrain);
    this.transport = null;
    this.batch = [];
    this.overflowed.clear();
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight) return;
    this.scheduled = true;
    // Later in this event-loop turn: amqplib turns a whole TCP read into
    // deliveries synchronously, so one frame carries all of them.
    setImmediate(this.flush);
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    if (!this.socket.connected) return this.dispose();
    this.writePending();
    // Now, not only when the transport drains with nothing queued: a client
    // that keeps another subscription busy would otherwise never hear of it.
    // Behind the frame just written, which holds every delivery the overflowed
    // streams got before their first drop.
    this.announceOverflow();
  };

  private readonly onDrain = (): void => {
    this.inFlight = false;
    if (this.batch.length > 0) this.schedule();
    else this.announceOverflow();
  };

  private announceOverflow(): void {
    if (this.overflowed.size === 0) return;
    for (const stream of this.overflowed.values()) {
      if (!stream.relaying) continue;
      this.metrics.resyncs.inc({ reason: ResyncReason.Overflow });
      this.socket.emit(ServerEvent.Resync, { id: stream.id, reason: ResyncReason.Overflow });
    }
    this.overflowed.clear();
  }

  private watch(transport: Transport): void {
    this.transport?.off('drain', this.onDrain);
    this.transport = transport;
    transport.on('drain', this.onDrain);
  }
}
