/**
 * Receipts for resumable subscriptions (docs/protocol.md §15.3), as the SDK
 * sends them (client/src/resume-tracker.ts): exactly one `received` in flight
 * per socket; one goes at once when a subscription has RECEIPT_BATCH
 * unconfirmed deliveries, otherwise when the caller's RECEIPT_DELAY_MS timer
 * fires (`flush(true)`). Each names, per subscription, the last `seq`
 * received (cumulative). Pure: the caller sends what `flush` / `acknowledged`
 * return, and arms the timer while `hasUnsent`.
 */
export type ReceivedSeqs = Record<string, number>;

/** The SDK's policy (client/src/resume-tracker.ts). */
export const RECEIPT_BATCH = 32;
export const RECEIPT_DELAY_MS = 1_000;

export class ReceiptScheduler {
  /** Last seq received per subscription. */
  private readonly latest = new Map<string, number>();
  /** Last seq named in a sent `received`, per subscription. */
  private readonly sent = new Map<string, number>();
  private inFlight = false;
  /** `received` requests sent. */
  requests = 0;

  /** Records a delivery; call `flush` after the whole batch. */
  noteDelivery(id: string, seq: number): void {
    const last = this.latest.get(id);
    if (last === undefined || seq > last) this.latest.set(id, seq);
  }

  /** After a batch (or, `force`, when the delay has passed): the request to send now, or null (one is in flight, or too little is new). */
  flush(force = false): ReceivedSeqs | null {
    if (this.inFlight || !(force || this.due())) return null;
    return this.take();
  }

  /** The in-flight request was answered: the next one to send now, or null. */
  acknowledged(): ReceivedSeqs | null {
    this.inFlight = false;
    return this.due() ? this.take() : null;
  }

  /** Deliveries no receipt has named yet: the caller keeps a RECEIPT_DELAY_MS timer armed. */
  get hasUnsent(): boolean {
    for (const [id, seq] of this.latest) if ((this.sent.get(id) ?? 0) < seq) return true;
    return false;
  }

  private due(): boolean {
    for (const [id, seq] of this.latest) if (seq - (this.sent.get(id) ?? 0) >= RECEIPT_BATCH) return true;
    return false;
  }

  /** The subscription ended: nothing more to confirm for it. */
  forget(id: string): void {
    this.latest.delete(id);
    this.sent.delete(id);
  }

  get pending(): boolean {
    return this.inFlight;
  }

  private take(): ReceivedSeqs | null {
    let seqs: ReceivedSeqs | null = null;
    for (const [id, seq] of this.latest) {
      if ((this.sent.get(id) ?? 0) >= seq) continue;
      (seqs ??= {})[id] = seq;
      this.sent.set(id, seq);
    }
    if (seqs) {
      this.inFlight = true;
      this.requests++;
    }
    return seqs;
  }
}
