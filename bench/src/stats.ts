/**
 * What a load generator counts, in a form that merges across processes:
 * a log-bucketed latency histogram, per-100 ms delivery counts on the shared
 * monotonic clock, and per-stream sequence tracking (losses, duplicates,
 * out-of-order).
 */

/** Bucket i holds latencies in (GROWTH^(i-1), GROWTH^i] µs: 1 % resolution, 1 µs .. ~100 s. */
const GROWTH = 1.01;
const LOG_GROWTH = Math.log(GROWTH);
const BUCKETS = 2600;

export interface HistogramData {
  counts: number[];
  max: number;
  total: number;
}

export class Histogram {
  private readonly counts = new Float64Array(BUCKETS);
  private max = 0;
  private total = 0;

  record(us: number): void {
    const v = us < 1 ? 1 : us;
    let i = Math.ceil(Math.log(v) / LOG_GROWTH);
    if (i >= BUCKETS) i = BUCKETS - 1;
    this.counts[i]!++;
    this.total++;
    if (v > this.max) this.max = v;
  }

  toJSON(): HistogramData {
    // Sparse arrays survive JSON IPC badly; send [index, count] pairs flattened.
    const flat: number[] = [];
    for (let i = 0; i < BUCKETS; i++) if (this.counts[i]) flat.push(i, this.counts[i]!);
    return { counts: flat, max: this.max, total: this.total };
  }
}

export class MergedHistogram {
  private readonly counts = new Float64Array(BUCKETS);
  max = 0;
  total = 0;

  add(data: HistogramData): void {
    for (let j = 0; j < data.counts.length; j += 2) this.counts[data.counts[j]!]! += data.counts[j + 1]!;
    this.max = Math.max(this.max, data.max);
    this.total += data.total;
  }

  /** The q-quantile in ms (upper bound of its bucket, capped at the observed max). */
  quantileMs(q: number): number | null {
    if (this.total === 0) return null;
    const rank = q * this.total;
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i]!;
      if (seen >= rank && this.counts[i]! > 0) return Math.min(GROWTH ** i, this.max) / 1000;
    }
    return this.max / 1000;
  }
}

/** Deliveries counted per 100 ms slot of the shared clock, to cut a measurement window afterwards. */
export class RateSeries {
  private readonly slots = new Map<number, number>();

  add(atUs: number, n = 1): void {
    const slot = Math.floor(atUs / 100_000);
    this.slots.set(slot, (this.slots.get(slot) ?? 0) + n);
  }

  toJSON(): Array<[number, number]> {
    return [...this.slots];
  }
}

/** Sum of deliveries in the whole 100 ms slots inside [fromUs, toUs), and the span they cover. */
export function countInWindow(series: Array<Array<[number, number]>>, fromUs: number, toUs: number): { count: number; seconds: number } {
  const first = Math.ceil(fromUs / 100_000);
  const last = Math.floor(toUs / 100_000); // exclusive
  let count = 0;
  for (const one of series) for (const [slot, n] of one) if (slot >= first && slot < last) count += n;
  return { count, seconds: Math.max(0, last - first) / 10 };
}

/**
 * Per-stream sequence numbers seen by one subscriber. A stream is one
 * publisher sequence (the fan-out's single stream, or one build's log).
 */
export class StreamTracker {
  private readonly seen = new Map<number, { bits: Uint8Array; max: number; distinct: number }>();
  distinct = 0;
  duplicates = 0;
  outOfOrder = 0;

  /** Returns false for a duplicate. */
  record(stream: number, n: number): boolean {
    let s = this.seen.get(stream);
    if (!s) this.seen.set(stream, (s = { bits: new Uint8Array(1024), max: 0, distinct: 0 }));
    const byte = n >> 3;
    if (byte >= s.bits.length) {
      const grown = new Uint8Array(Math.max(byte + 1, s.bits.length * 2));
      grown.set(s.bits);
      s.bits = grown;
    }
    const mask = 1 << (n & 7);
    if (s.bits[byte]! & mask) {
      this.duplicates++;
      return false;
    }
    s.bits[byte]! |= mask;
    this.distinct++;
    s.distinct++;
    if (n < s.max) this.outOfOrder++;
    else s.max = n;
    return true;
  }

  /** Distinct sequence numbers received on a stream. */
  distinctIn(stream: number): number {
    return this.seen.get(stream)?.distinct ?? 0;
  }

  /** Highest sequence number seen on a stream (0: none). */
  highest(stream: number): number {
    return this.seen.get(stream)?.max ?? 0;
  }
}
