/**
 * What the soak checks for each subscription, against what the broker should
 * have routed to it.
 *
 * The publisher sends message g (its global sequence number; one confirm
 * channel, so the broker routes in g order) to key `keys[g % K]` with that
 * key's counter n, stamped with its send time t on the machine-wide
 * monotonic clock. A subscription is judged in segments:
 *
 * - The first segment starts at the subscribe ack, received at time A. Every
 *   message sent after A must arrive: the queue was bound before the ack was
 *   sent. Its baseline g0 is the lowest g seen in this process with t > A
 *   (any later g was sent later still); messages before g0 may or may not
 *   arrive and are not judged ("early" arrivals are fine).
 * - A `resync` ends a segment: losses in it are announced, so tolerated. The
 *   next segment starts at the next delivery (its g is the new baseline).
 * - A segment is judged up to its last delivery (a queue delivers in the order
 *   it was routed, so every matching message between g0 and the last one
 *   received must be there) — or, for subscriptions still live when the
 *   publisher stops, up to the last message published, once drained.
 *
 * Independently of that: the protocol `seq` grows by exactly one per
 * delivery (any value is accepted right after a resync), no counter arrives
 * twice, and a key's counters arrive in increasing order.
 */
import type { KeySpace } from './keys.js';

/** What the publisher puts in every body. */
export interface SoakBody {
  /** Global sequence number (publish order), from 0. */
  g: number;
  /** The routing key's own counter, from 1. */
  n: number;
  /** Send time, µs on CLOCK_MONOTONIC (clock.ts). */
  t: number;
}

/** A set of non-negative integers as a bitset that grows in both directions. */
export class CounterSet {
  private base = 0;
  private bits = new Uint8Array(0);

  has(n: number): boolean {
    const i = n - this.base;
    return i >= 0 && i >> 3 < this.bits.length && (this.bits[i >> 3]! & (1 << (i & 7))) !== 0;
  }

  /** Adds n; false when it was already there. */
  add(n: number): boolean {
    if (this.bits.length === 0) this.base = n - (n % 8);
    if (n < this.base) this.growDown(n);
    let i = n - this.base;
    if (i >> 3 >= this.bits.length) this.growUp(i >> 3);
    i = n - this.base;
    const mask = 1 << (i & 7);
    if (this.bits[i >> 3]! & mask) return false;
    this.bits[i >> 3]! |= mask;
    return true;
  }

  private growUp(byte: number): void {
    const grown = new Uint8Array(Math.max(byte + 1, this.bits.length * 2, 16));
    grown.set(this.bits);
    this.bits = grown;
  }

  private growDown(n: number): void {
    const newBase = n - (n % 8);
    const shift = (this.base - newBase) >> 3;
    const grown = new Uint8Array(this.bits.length + shift);
    grown.set(this.bits, shift);
    this.bits = grown;
    this.base = newBase;
  }
}

/** Running totals, merged across workers. */
export interface CheckCounters {
  /** Deliveries that reached a subscription's check. */
  deliveries: number;
  /** Messages a finished segment was judged on (expected to have arrived). */
  judged: number;
  /** Expected messages that never arrived, in segments that did not end with a resync. */
  lost: number;
  /** Expected messages that never arrived, in segments that ended with a resync (announced). */
  lostAnnounced: number;
  duplicates: number;
  /** A key's counter lower than one already received (and not a duplicate). */
  outOfOrder: number;
  /** A message older than one of another key already received by the same subscription (informational). */
  crossKeyReorders: number;
  /** A protocol `seq` that was not the previous + 1, with no resync in between. */
  seqGaps: number;
  /** A body whose counters do not match its routing key. */
  corrupt: number;
  segments: number;
  /** Segments that ended before any message sent after their start was seen: nothing to judge. */
  unjudgedSegments: number;
}

export function emptyCheckCounters(): CheckCounters {
  return { deliveries: 0, judged: 0, lost: 0, lostAnnounced: 0, duplicates: 0, outOfOrder: 0, crossKeyReorders: 0, seqGaps: 0, corrupt: 0, segments: 0, unjudgedSegments: 0 };
}

/** Who a subscription belongs to (for reports). */
export interface SubscriptionInfo {
  client: number;
  /** The gateway's subscription id (its queue is `topicgate.<gateway id>.<id>`). */
  id: string;
  pattern: string;
  /** The client's connection number (clients reconnect after being cut). */
  connection: number;
}

/** A run of consecutive counters of one key that one subscription should have received and did not. */
export interface LossRecord extends SubscriptionInfo {
  key: string;
  nFrom: number;
  nTo: number;
  gFrom: number;
  gTo: number;
  count: number;
  /** Why the segment ended: `resync:<reason>` announces the loss; anything else leaves it silent. */
  segmentEnd: string;
  announced: boolean;
  /** Later messages of the same subscription did arrive (a hole, not a tail cut off at the end). */
  inside: boolean;
  ackUs: number;
  segmentStartUs: number;
  /** The segment's baseline and last delivery (global sequence numbers). */
  segmentG0: number;
  segmentLastG: number;
}

/** One broken invariant other than a loss (examples for the report). */
export interface Problem extends SubscriptionInfo {
  kind: 'seq gap' | 'duplicate' | 'out of order' | 'corrupt body';
  key: string;
  detail: string;
}

export interface CheckContext {
  space: KeySpace;
  counters: CheckCounters;
  baselines: Baselines;
  loss(record: LossRecord): void;
  problem(problem: Problem): void;
}

class Segment {
  /** Lowest g that must have arrived (null: not known yet). */
  g0: number | null = null;
  lastG = -1;
  closed = false;

  constructor(
    /** `ack`: baseline from the time the ack was received; `next`: the next delivery (after a resync). */
    readonly baseline: 'ack' | 'next',
    readonly startUs: number,
  ) {}
}

/**
 * Baselines of segments that start at an ack: the lowest g, among deliveries
 * this process sees, that was sent after the ack arrived. Deliveries of
 * different sockets interleave out of publish order by a few milliseconds, so
 * a segment keeps lowering its g0 for a second, then leaves the list.
 */
export class Baselines {
  private pending: Segment[] = [];

  constructor(private readonly settleUs = 1_000_000) {}

  add(segment: Segment): void {
    this.pending.push(segment);
  }

  /** Every delivery this process receives passes through here. */
  observe(g: number, t: number, nowUs: number): void {
    if (this.pending.length === 0) return;
    let keep = 0;
    for (const seg of this.pending) {
      if (seg.closed) continue;
      if (t > seg.startUs && (seg.g0 === null || g < seg.g0)) seg.g0 = g;
      if (seg.g0 === null || nowUs - seg.startUs < this.settleUs) this.pending[keep++] = seg;
    }
    this.pending.length = keep;
  }
}

interface KeyTrack {
  received: CounterSet;
  lastN: number;
}

export class SubscriptionCheck {
  private readonly tracks = new Map<number, KeyTrack>();
  private segment: Segment;
  private lastSeq = 0;
  /** After a resync the next `seq` is accepted as it comes. */
  private seqFree = false;
  ended = false;

  constructor(
    readonly info: SubscriptionInfo,
    readonly ackUs: number,
    private readonly ctx: CheckContext,
  ) {
    this.segment = this.startSegment('ack', ackUs);
  }

  deliver(key: string, body: SoakBody, seq: number): void {
    if (this.ended) return;
    const { space, counters } = this.ctx;
    const { g, n } = body;
    if (!Number.isInteger(g) || g < 0 || space.keys[space.keyIndexOf(g)] !== key || space.counterOf(g) !== n) {
      counters.corrupt++;
      this.problem('corrupt body', key, `body ${JSON.stringify({ g: body.g, n: body.n })} does not belong to key ${key}`);
      return;
    }
    counters.deliveries++;

    if (!this.seqFree && seq !== this.lastSeq + 1) {
      counters.seqGaps++;
      this.problem('seq gap', key, `seq ${seq} after ${this.lastSeq}`);
    }
    this.seqFree = false;
    this.lastSeq = seq;

    const seg = this.segment;
    if (seg.baseline === 'next' && seg.g0 === null) seg.g0 = g;

    const k = space.keyIndexOf(g);
    let track = this.tracks.get(k);
    if (!track) this.tracks.set(k, (track = { received: new CounterSet(), lastN: 0 }));
    if (!track.received.add(n)) {
      counters.duplicates++;
      this.problem('duplicate', key, `counter ${n} (g ${g}) received twice`);
      return;
    }
    if (n < track.lastN) {
      counters.outOfOrder++;
      this.problem('out of order', key, `counter ${n} after ${track.lastN}`);
    } else {
      track.lastN = n;
    }
    if (g < seg.lastG) counters.crossKeyReorders++;
    else seg.lastG = g;
  }

  /** `resync`: what came before may have lost messages; judging restarts at the next delivery. */
  resync(reason: string, nowUs: number): void {
    this.closeSegment(`resync:${reason}`, this.segment.lastG);
    this.segment = this.startSegment('next', nowUs);
    this.seqFree = true;
  }

  /**
   * The subscription ended (or the run did): judge the last segment up to
   * `upTo` — by default its last delivery, since messages sent after that may
   * legitimately not have arrived when a subscription ends.
   */
  end(reason: string, upTo = this.segment.lastG): void {
    if (this.ended) return;
    this.ended = true;
    this.closeSegment(reason, upTo);
    this.tracks.clear();
  }

  /** True once every message up to `gEnd` that this subscription must receive has arrived. */
  drained(gEnd: number): boolean {
    const seg = this.segment;
    if (seg.g0 === null) return true;
    const target = this.ctx.space.lastMatchUpTo(this.info.pattern, gEnd);
    return target < seg.g0 || seg.lastG >= target;
  }

  private startSegment(baseline: 'ack' | 'next', startUs: number): Segment {
    const seg = new Segment(baseline, startUs);
    this.ctx.counters.segments++;
    if (baseline === 'ack') this.ctx.baselines.add(seg);
    return seg;
  }

  private closeSegment(reason: string, upTo: number): void {
    const seg = this.segment;
    seg.closed = true;
    const { space, counters } = this.ctx;
    if (seg.g0 === null || upTo < seg.g0) {
      counters.unjudgedSegments++;
      return;
    }
    const announced = reason.startsWith('resync:');
    for (const k of space.matching(this.info.pattern)) {
      const nFrom = space.firstCounterFrom(k, seg.g0);
      const nTo = space.lastCounterUpTo(k, upTo);
      if (nTo < nFrom) continue;
      counters.judged += nTo - nFrom + 1;
      const received = this.tracks.get(k)?.received;
      let runStart = 0;
      for (let n = nFrom; n <= nTo + 1; n++) {
        const missing = n <= nTo && !received?.has(n);
        if (missing && runStart === 0) runStart = n;
        if (!missing && runStart !== 0) {
          this.lost(k, runStart, n - 1, reason, announced, seg);
          runStart = 0;
        }
      }
    }
  }

  private lost(k: number, nFrom: number, nTo: number, reason: string, announced: boolean, seg: Segment): void {
    const { space, counters } = this.ctx;
    const count = nTo - nFrom + 1;
    if (announced) counters.lostAnnounced += count;
    else counters.lost += count;
    const gTo = space.globalOf(k, nTo);
    this.ctx.loss({
      ...this.info,
      key: space.keys[k]!,
      nFrom,
      nTo,
      gFrom: space.globalOf(k, nFrom),
      gTo,
      count,
      segmentEnd: reason,
      announced,
      inside: gTo < seg.lastG,
      ackUs: this.ackUs,
      segmentStartUs: seg.startUs,
      segmentG0: seg.g0!,
      segmentLastG: seg.lastG,
    });
  }

  private problem(kind: Problem['kind'], key: string, detail: string): void {
    this.ctx.problem({ ...this.info, kind, key, detail });
  }
}
