/**
 * Which of a resumed queue's first deliveries the client already has
 * (docs/protocol.md §15.4). Pure: fed deliveries, it decides.
 *
 * The queue starts with what its previous consumer left unsettled, in
 * order and marked redelivered. A receipt for `s` settles the deliveries
 * before `s` and keeps `s` itself unsettled: the broker's point is
 * `anchor(settled)` exactly (the client learns of the receipt only after
 * the broker processed it), unless a receipt was in flight at the cut; then
 * it is `anchor(settled)` or `anchor(pending)`. Each hypothesis says how
 * many of the first deliveries the client has, at least one of them
 * (the kept one), and the client's fingerprints of those deliveries confirm
 * or refute it: with the kept delivery, two hypotheses both fit only if the
 * messages repeat. Exactly one must survive; otherwise the resume is refused
 * (`interrupted`), never guessed.
 */

/** The last seq the broker took a settle for after a receipt for `seq`: all but that delivery. */
export function anchor(seq: number): number {
  return Math.max(seq - 1, 0);
}
export interface ResumePosition {
  /** The last seq the client received. */
  seq: number;
  /** The seq of the last receipt the gateway acknowledged (0: none). */
  settled: number;
  /** The seq of a receipt in flight at the cut, if any. */
  pending?: number;
  /** Fingerprints of the deliveries anchor(settled)+1 … seq, oldest first. */
  fingerprints: readonly number[];
}

export interface Arrival {
  redelivered: boolean;
  fingerprint: () => number;
}

export type Alignment =
  /** The first `skip` deliveries are the client's seqs settled'+1 … seq; the next is seq + 1. */
  | { ok: true; skip: number; brokerSettled: number }
  | { ok: false; why: string };

export class ResumeAligner {
  private readonly arrivals: Arrival[] = [];
  private ended = false;
  private readonly candidates: number[];

  constructor(
    private readonly position: ResumePosition,
    /** Deliveries the queue held when consuming began (the marker excluded). */
    private readonly backlog: number,
    /**
     * Unsettled deliveries the broker sends a consumer (its prefetch, less the
     * marker). A consumer never held more, so no hypothesis skips more; and
     * no more arrive before the decision settles some.
     */
    private readonly window = Number.POSITIVE_INFINITY,
  ) {
    const { seq, settled, pending } = position;
    const points = pending !== undefined && pending > settled ? [anchor(settled), anchor(pending)] : [anchor(settled)];
    this.candidates = points.filter((point) => seq - point <= window);
  }

  /** What it has seen and needs, for the log when a decision does not come. */
  describe(): string {
    return `${this.arrivals.length} redelivered of ${this.needed} needed, ${this.backlog} waiting, run ${this.ended ? 'ended' : 'open'}`;
  }

  /** The most deliveries a decision can need. */
  private get needed(): number {
    return Math.min(this.position.seq - anchor(this.position.settled), this.window);
  }

  /** Adds the next delivery; returns the decision once it can be made. */
  push(arrival: Arrival): Alignment | null {
    if (!arrival.redelivered) this.ended = true; // the unsettled run is over
    else this.arrivals.push(arrival);
    return this.decision();
  }

  /** The decision, if what has arrived is enough for it. */
  decision(): Alignment | null {
    const complete = this.ended || this.arrivals.length >= this.needed || this.arrivals.length >= this.backlog;
    if (!complete) return null;
    const surviving = this.candidates.filter((brokerSettled) => this.consistent(brokerSettled));
    if (surviving.length === 1) return { ok: true, skip: this.position.seq - surviving[0]!, brokerSettled: surviving[0]! };
    return {
      ok: false,
      why: surviving.length === 0 ? 'the queue does not hold what the client says it was sent' : 'a receipt was in flight and the deliveries around it are identical',
    };
  }

  private consistent(brokerSettled: number): boolean {
    const { seq, settled, fingerprints } = this.position;
    const skip = seq - brokerSettled;
    if (this.arrivals.length < skip) return false;
    for (let i = 0; i < skip; i++) {
      if (this.arrivals[i]!.fingerprint() !== fingerprints[brokerSettled - anchor(settled) + i]) return false;
    }
    return true;
  }
}
