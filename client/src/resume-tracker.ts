/**
 * Resumable subscriptions on the client side (docs/protocol.md §15): what a
 * subscription must remember to be taken up again after an unexpected
 * disconnect, and the `received` receipts that let the gateway settle its
 * deliveries with the broker.
 *
 * The gateway keeps each delivery of a resumable subscription unsettled at the
 * broker until the client confirms it, and the broker stops sending after
 * the gateway's prefetch (TOPICGATE_RESUME_PREFETCH, at least 64) of unsettled
 * deliveries per subscription: receipts must therefore flow
 * continuously, not only before a disconnect. A receipt for `s` settles the
 * deliveries before `s` and keeps `s` itself unsettled, so that a resume
 * always has one delivery to recognise the queue's start by. On resume, the
 * client names the last seq it received, the seq of the last receipt the
 * gateway acknowledged (and of one in flight at the cut, whose fate it cannot
 * know), and the fingerprints of the deliveries from that receipt's on; the
 * gateway matches them against what the broker redelivers, and continues
 * exactly after `seq` or says why it cannot.
 */
import {
  ClientEvent,
  deliveryFingerprint,
  MAX_RESUME_FINGERPRINTS,
  type ReceivedAck,
  type ReceivedRequest,
  type ResumeGrant,
  type ResumeRequest,
} from '@topicgate/shared';

export { MAX_RESUME_FINGERPRINTS };
/**
 * Unconfirmed deliveries of one subscription that make a receipt go at once:
 * at most half of the smallest prefetch a gateway allows (64), so a fast
 * stream never stalls.
 */
export const RECEIPT_BATCH = 32;
/**
 * How long fewer deliveries wait for a receipt. Each receipt costs the
 * gateway and the broker a round trip, so a slow stream confirms rarely; what
 * it leaves unconfirmed only lengthens a resume's fingerprints.
 */
export const RECEIPT_DELAY_MS = 1_000;
/** After a refused receipt, the next is not sent sooner than this: a gateway in trouble is not hammered. */
export const RECEIPT_RETRY_DELAY_MS = 1_000;

/** Whether a value is a well-formed grant; anything else from the wire counts as no grant. */
export function isResumeGrant(value: unknown): value is ResumeGrant {
  if (typeof value !== 'object' || value === null) return false;
  const { claim, window } = value as Record<string, unknown>;
  return typeof claim === 'string' && claim !== '' && typeof window === 'number' && window > 0;
}

/** The fields of a delivery the bookkeeping needs. */
export interface TrackedDelivery {
  readonly seq: number;
  readonly key: string;
  readonly body: object;
}

/** What to send for a subscription on a new connection. */
export type ResumePlan =
  /** Present this position: the gateway continues after `seq`, or says why not. */
  | { kind: 'resume'; request: ResumeRequest }
  /** The resume window has passed since the disconnect: the queue is gone, subscribe afresh and reload (`expired`). */
  | { kind: 'expired' }
  /** Nothing to resume (never granted, forgotten, or the position cannot be presented): subscribe afresh. */
  | { kind: 'fresh' };

/** The last seq the broker settled after a receipt for `seq`: all but that delivery (docs/protocol.md §15.4). */
export function anchor(seq: number): number {
  return Math.max(seq - 1, 0);
}

/** A receipt as sent, to be matched with its ack. */
export interface ReceiptToken {
  readonly seq: number;
  readonly generation: number;
}

/**
 * One subscription's resume position. `seq` is the last delivery received,
 * `settled` the seq of the last receipt the gateway acknowledged `{ ok: true }`,
 * `pending` the seq of a receipt whose fate is unknown (in flight, or in
 * flight when the connection was cut). The deliveries anchor(settled)+1 … seq
 * are kept, since only they can be asked for as fingerprints.
 */
export class ResumeTracker {
  #grant: ResumeGrant | undefined;
  #seq = 0;
  #settled = 0;
  #pending: number | undefined;
  /** Deliveries anchor(settled)+1 … seq, oldest first; fingerprints are computed only on resume, keeping the hot path to a push. */
  #unsettled: TrackedDelivery[] = [];
  /** A receipt covering this subscription awaits its ack on the current connection. */
  #inFlight = false;
  /** When the connection was lost (ms, the caller's clock); undefined while connected or never lost. */
  #awaySince: number | undefined;
  /** Bumped whenever seq restarts or the gateway moves `settled` itself: an older receipt's ack must not apply. */
  #generation = 0;

  /** Whether the gateway granted resume for the current subscription. */
  get resumable(): boolean {
    return this.#grant !== undefined;
  }
  get grant(): ResumeGrant | undefined {
    return this.#grant;
  }
  get seq(): number {
    return this.#seq;
  }
  get settled(): number {
    return this.#settled;
  }
  get pending(): number | undefined {
    return this.#pending;
  }
  /** How many deliveries are kept for fingerprints. */
  get unsettledCount(): number {
    return this.#unsettled.length;
  }

  /** A fresh subscription was acknowledged (with a grant, or without one: not resumable); seq starts again at 1. */
  granted(grant: ResumeGrant | undefined): void {
    this.#grant = grant;
    this.#seq = 0;
    this.#settled = 0;
    this.#pending = undefined;
    this.#unsettled = [];
    this.#inFlight = false;
    this.#awaySince = undefined;
    this.#generation++;
  }

  /**
   * The gateway took the subscription up where the client left it: seq
   * continues. `settled` is the gateway's answer to which receipt the broker
   * had reached (a receipt in flight at the cut is resolved by it); without
   * one, `settled` and `pending` stay as they were, still both possible.
   */
  resumed(grant: ResumeGrant | undefined, settled: unknown): void {
    if (grant !== undefined) this.#grant = grant;
    this.#awaySince = undefined;
    this.#inFlight = false;
    if (typeof settled === 'number' && Number.isSafeInteger(settled) && settled >= 0 && settled <= this.#seq + 1) {
      this.#settled = settled;
      this.#pending = undefined;
      this.#dropBefore(anchor(settled) + 1);
    }
  }

  /** One delivery, in order. Repeats are ignored; a gap leaves a position that `plan` will not present. */
  delivered(delivery: TrackedDelivery): void {
    if (this.#grant === undefined || delivery.seq <= this.#seq) return;
    this.#seq = delivery.seq;
    this.#unsettled.push(delivery);
  }

  /**
   * `resync` with `resume`: the gateway replaced the subscription's queue.
   * The new queue holds nothing relayed so far — not even the delivery a
   * receipt would keep as its anchor — so `settled` becomes `seq + 1`, as if
   * a receipt for the next delivery had been applied (docs/protocol.md
   * §15.3), and a receipt in flight means nothing any more.
   */
  replaced(grant: ResumeGrant): void {
    this.#grant = grant;
    this.#settled = this.#seq + 1;
    this.#pending = undefined;
    this.#dropBefore(this.#seq + 1);
    this.#inFlight = false;
    this.#generation++;
  }

  /** The connection was lost unexpectedly; the window counts from the first loss. */
  away(now: number): void {
    if (this.#grant === undefined) return;
    this.#awaySince ??= now;
    // Its ack will never come; `pending` stays, as the receipt may have reached the broker.
    this.#inFlight = false;
  }

  /** The subscription ended on purpose (or its queue is known to be gone): nothing to resume. */
  forget(): void {
    this.#grant = undefined;
    this.#unsettled = [];
    this.#pending = undefined;
    this.#inFlight = false;
    this.#awaySince = undefined;
    this.#generation++;
  }

  /** What to send on a new connection at `now`. */
  plan(now: number): ResumePlan {
    const grant = this.#grant;
    if (grant === undefined) return { kind: 'fresh' };
    if (this.#awaySince !== undefined && now - this.#awaySince >= grant.window * 1000) return { kind: 'expired' };
    const from = anchor(this.#settled) + 1;
    const count = this.#seq - from + 1;
    const unsettled = this.#unsettled;
    // Exactly the deliveries anchor(settled)+1 … seq, or the gateway could only refuse: a gap (seq_gap) makes it so.
    if (count > MAX_RESUME_FINGERPRINTS || unsettled.length !== count || (count > 0 && unsettled[0]!.seq !== from)) {
      return { kind: 'fresh' };
    }
    const pending = this.#pending;
    return {
      kind: 'resume',
      request: {
        claim: grant.claim,
        seq: this.#seq,
        settled: this.#settled,
        ...(pending !== undefined && pending > this.#settled && pending <= this.#seq && { pending }),
        fingerprints: unsettled.map((d) => deliveryFingerprint(d.key, d.body)),
      },
    };
  }

  /** Whether a receipt should include this subscription: it holds deliveries not yet confirmed, and none is in flight for it. */
  needsReceipt(): boolean {
    return this.#grant !== undefined && !this.#inFlight && this.#seq > this.#settled;
  }

  /** Whether enough deliveries await a receipt that it should go now rather than after the delay. */
  receiptDue(): boolean {
    return this.needsReceipt() && this.#seq - this.#settled >= RECEIPT_BATCH;
  }

  /** A receipt through `seq` is being sent. */
  receiptSent(): ReceiptToken {
    this.#inFlight = true;
    this.#pending = this.#seq;
    return { seq: this.#seq, generation: this.#generation };
  }

  /** The receipt's ack: `ok` means the broker settled everything through its seq. */
  receiptAcked(token: ReceiptToken, ok: boolean): void {
    if (token.generation !== this.#generation) return;
    this.#inFlight = false;
    if (this.#pending === token.seq) this.#pending = undefined;
    // Refused: the gateway says the receipts are void; what they covered stays unsettled.
    if (!ok || token.seq <= this.#settled) return;
    this.#settled = token.seq;
    // The delivery the receipt named stays unsettled at the broker: its fingerprint is still owed.
    this.#dropBefore(anchor(token.seq) + 1);
  }

  /** Forgets the kept deliveries before `seq`. */
  #dropBefore(seq: number): void {
    let drop = 0;
    while (drop < this.#unsettled.length && this.#unsettled[drop]!.seq < seq) drop++;
    if (drop > 0) this.#unsettled.splice(0, drop);
  }
}

/** The subscriptions a client holds on its current connection. */
export interface ReceiptTarget {
  /** The gateway's id on the current connection; undefined while not subscribed. */
  readonly id: string | undefined;
  readonly tracker: ResumeTracker;
}

/** What the scheduler needs from its client. */
export interface ReceiptPort {
  targets(): Iterable<ReceiptTarget>;
  connected(): boolean;
  send(event: typeof ClientEvent.Received, request: ReceivedRequest, ack: (result: ReceivedAck) => void): void;
}

/**
 * Sends `received` for every resumable subscription of one connection: at
 * most one in flight (the gateway handles them one at a time anyway, and
 * each waits for the broker), the first shortly after new deliveries, the
 * next as soon as the previous is acknowledged if more arrived meanwhile.
 */
export class ReceiptScheduler {
  readonly #port: ReceiptPort;
  readonly #delay: number;
  readonly #retryDelay: number;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** When the armed timer fires (ms since the epoch). */
  #due = 0;
  #inFlight = false;
  /** Bumped when the connection goes: an ack from the old one is ignored. */
  #epoch = 0;

  constructor(port: ReceiptPort, delay = RECEIPT_DELAY_MS, retryDelay = RECEIPT_RETRY_DELAY_MS) {
    this.#port = port;
    this.#delay = delay;
    this.#retryDelay = retryDelay;
  }

  /** Whether a receipt awaits its ack. */
  get inFlight(): boolean {
    return this.#inFlight;
  }

  /** New deliveries arrived (or a subscription resumed with unconfirmed ones): a receipt follows, at once if one is due. */
  poke(): void {
    this.#arm(this.#anyDue() ? 0 : this.#delay);
  }

  /** The connection went away: no ack will come, and nothing is sent until `poke` on the next one. */
  interrupted(): void {
    this.#epoch++;
    this.#inFlight = false;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #arm(delay: number): void {
    if (this.#inFlight) return;
    const due = Date.now() + delay;
    if (this.#timer !== undefined) {
      if (this.#due <= due) return;
      clearTimeout(this.#timer);
    }
    this.#due = due;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#flush();
    }, delay);
  }

  #anyDue(): boolean {
    for (const { id, tracker } of this.#port.targets()) if (id !== undefined && tracker.receiptDue()) return true;
    return false;
  }

  #flush(): void {
    if (this.#inFlight || !this.#port.connected()) return;
    const seqs: Record<string, number> = {};
    const sent: Array<[ResumeTracker, ReceiptToken]> = [];
    for (const { id, tracker } of this.#port.targets()) {
      if (id === undefined || !tracker.needsReceipt()) continue;
      seqs[id] = tracker.seq;
      sent.push([tracker, tracker.receiptSent()]);
    }
    if (sent.length === 0) return;
    this.#inFlight = true;
    const epoch = this.#epoch;
    this.#port.send(ClientEvent.Received, { seqs }, (ack) => {
      if (epoch !== this.#epoch) return;
      this.#inFlight = false;
      const ok = typeof ack === 'object' && ack !== null && ack.ok === true;
      for (const [tracker, token] of sent) tracker.receiptAcked(token, ok);
      if (!ok) {
        this.#arm(this.#retryDelay);
        return;
      }
      // Enough arrived while this one was in flight: the next goes at once (the broker may be waiting for it); fewer, after the delay.
      if (this.#anyDue()) return this.#flush();
      for (const { id, tracker } of this.#port.targets()) {
        if (id !== undefined && tracker.needsReceipt()) return this.#arm(this.#delay);
      }
    });
  }
}
