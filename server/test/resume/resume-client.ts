/**
 * A protocol-level client of resumable subscriptions (docs/protocol.md §15),
 * written from the spec: it keeps, per subscription, the last seq received,
 * the last seq the gateway confirmed settled, the receipt in flight and the
 * deliveries after `settled`, and presents them on resume.
 */
import { ClientEvent, deliveryFingerprint, type Delivery, type ReceivedAck, type ResumeGrant, type ResumeRequest, type SubscribeAck } from '@topicgate/shared';
import { connectClient, type TestClient } from '../support/gateway.js';

export interface Held {
  pattern: string;
  id: string;
  grant: ResumeGrant;
  /** Every delivery received over the subscription's life, across resumes, in order. */
  received: Delivery[];
  seq: number;
  settled: number;
  pending?: number;
}

export class ResumingClient {
  readonly subs = new Map<string, Held>();
  private byId = new Map<string, Held>();

  private constructor(
    public client: TestClient,
    private readonly url: string,
    private readonly token?: string,
  ) {
    this.listen();
  }

  static async connect(url: string, token?: string): Promise<ResumingClient> {
    return new ResumingClient(await connectClient(url, token), url, token);
  }

  /** Deliveries for ids not known yet: they may precede their subscribe ack (§14.1). */
  private early: Delivery[] = [];
  /** Confirm deliveries as they come, one receipt in flight at a time, as the SDK does. */
  private auto = false;
  private receiptInFlight = false;
  /** Every resync notice received, across connections. */
  readonly resyncs: unknown[] = [];

  private listen(): void {
    const socket = this.client.socket;
    socket.on('messages', (batch: Delivery[]) => {
      for (const delivery of batch) this.take(delivery);
      if (this.auto) this.sendReceipt(socket);
    });
    this.client.socket.on('resync', (notice: { id: string; resume?: ResumeGrant }) => {
      this.resyncs.push(notice);
      const held = this.byId.get(notice.id);
      if (held && notice.resume) {
        held.grant = notice.resume;
        held.settled = held.seq + 1; // the new queue holds nothing relayed so far, not even an anchor (§15.3)
        held.pending = undefined;
      }
    });
  }

  private take(delivery: Delivery): void {
    const held = this.byId.get(delivery.id);
    if (!held) {
      this.early.push(delivery);
      return;
    }
    if (delivery.seq !== held.seq + 1) throw new Error(`seq gap on ${held.pattern}: ${held.seq} then ${delivery.seq}`);
    held.seq = delivery.seq;
    held.received.push(delivery);
  }

  /** Registers an acknowledged id and hands it what arrived before its ack. */
  private known(id: string, held: Held): void {
    this.byId.set(id, held);
    const early = this.early.filter((d) => d.id === id);
    this.early = this.early.filter((d) => d.id !== id);
    for (const delivery of early) this.take(delivery);
  }

  /** A resumable subscription; fails unless the gateway granted resume. */
  async subscribe(name: string, pattern: string): Promise<Held> {
    const ack: SubscribeAck = await this.client.socket.timeout(10_000).emitWithAck(ClientEvent.Subscribe, { pattern, resumable: true });
    if (!ack.ok || !ack.resume) throw new Error(`subscribe ${pattern}: ${JSON.stringify(ack)}`);
    const held: Held = { pattern, id: ack.id, grant: ack.resume, received: [], seq: 0, settled: 0 };
    this.subs.set(name, held);
    this.known(ack.id, held);
    return held;
  }

  /** Sends one `received` for every subscription and waits for its ack (the receipt is then settled). */
  async confirm(): Promise<ReceivedAck> {
    const seqs: Record<string, number> = {};
    for (const held of this.subs.values()) {
      seqs[held.id] = held.seq;
      held.pending = held.seq;
    }
    const ack: ReceivedAck = await this.client.socket.timeout(10_000).emitWithAck(ClientEvent.Received, { seqs });
    if (ack.ok) for (const held of this.subs.values()) if (held.pending !== undefined) (held.settled = held.pending), (held.pending = undefined);
    return ack;
  }

  /** From now on, confirm every delivery shortly after it arrives (one receipt in flight per socket). */
  autoConfirm(): void {
    this.auto = true;
    this.sendReceipt(this.client.socket);
  }

  private sendReceipt(socket: TestClient['socket']): void {
    if (this.receiptInFlight || socket !== this.client.socket || !socket.connected) return;
    const seqs: Record<string, number> = {};
    const sent: Array<[Held, number]> = [];
    for (const held of this.subs.values()) {
      if (held.seq === held.settled || held.pending !== undefined || !this.byId.has(held.id)) continue;
      seqs[held.id] = held.seq;
      held.pending = held.seq;
      sent.push([held, held.seq]);
    }
    if (sent.length === 0) return;
    this.receiptInFlight = true;
    socket.emit(ClientEvent.Received, { seqs }, (ack: ReceivedAck) => {
      if (socket !== this.client.socket) return; // a receipt of a connection since abandoned: its fate is unknown, `pending` says so
      this.receiptInFlight = false;
      for (const [held, seq] of sent) {
        if (held.pending !== seq) continue;
        if (ack.ok) held.settled = seq;
        held.pending = undefined;
      }
      this.sendReceipt(socket);
    });
  }

  /** Sends a `received` without waiting: a receipt that may be in flight at a cut. */
  confirmWithoutWaiting(): void {
    const seqs: Record<string, number> = {};
    for (const held of this.subs.values()) {
      seqs[held.id] = held.seq;
      held.pending = held.seq;
    }
    this.client.socket.emit(ClientEvent.Received, { seqs }, () => undefined);
  }

  /** The transport dies without a goodbye (what a network cut looks like to the gateway). */
  cut(): void {
    (this.client.socket.io.engine as unknown as { close(): void }).close();
  }

  /**
   * A new connection (to `url`, default the same gateway) resuming every
   * subscription; returns the acks by name. `leaveOldOpen`: the old socket is
   * abandoned, not closed, as a client whose network died silently leaves it.
   */
  async reconnect(url = this.url, { token = this.token, leaveOldOpen = false } = {}): Promise<Map<string, SubscribeAck>> {
    this.client.socket.off('messages');
    this.client.socket.off('resync');
    if (!leaveOldOpen) this.client.socket.close();
    this.client = await connectClient(url, token);
    this.byId = new Map();
    this.early = [];
    this.receiptInFlight = false;
    this.listen();
    const acks = new Map<string, SubscribeAck>();
    for (const [name, held] of this.subs) {
      const ack: SubscribeAck = await this.client.socket.timeout(30_000).emitWithAck(ClientEvent.Subscribe, { pattern: held.pattern, resumable: true, resume: this.position(held) });
      acks.set(name, ack);
      if (!ack.ok) continue;
      held.id = ack.id;
      if (ack.resume) held.grant = ack.resume;
      if (!ack.resumed) {
        held.seq = 0; // a fresh subscription: seq starts again
        held.settled = 0;
      } else {
        held.settled = ack.settled!;
      }
      held.pending = undefined;
      this.known(ack.id, held);
    }
    if (this.auto) this.sendReceipt(this.client.socket);
    return acks;
  }

  position(held: Held): ResumeRequest {
    // From the delivery the last receipt named (kept unsettled by the gateway), or from 1.
    const unsettled = held.received.slice(held.received.length - (held.seq - Math.max(held.settled - 1, 0)));
    return {
      claim: held.grant.claim,
      seq: held.seq,
      settled: held.settled,
      ...(held.pending !== undefined && { pending: held.pending }),
      fingerprints: unsettled.map((d) => deliveryFingerprint(d.key, d.body)),
    };
  }

  close(): void {
    this.client.close();
  }
}
