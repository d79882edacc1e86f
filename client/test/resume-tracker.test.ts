/**
 * The resume bookkeeping on its own: which deliveries a resume must present
 * fingerprints of, how receipts move `settled` and `pending`, and the receipt
 * schedule (one in flight per socket, a short delay, the next right after the
 * ack).
 */
import { deliveryFingerprint, type ReceivedAck, type ReceivedRequest, type ResumeGrant } from '@topicgate/shared';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  anchor,
  MAX_RESUME_FINGERPRINTS,
  RECEIPT_BATCH,
  RECEIPT_DELAY_MS,
  RECEIPT_RETRY_DELAY_MS,
  ReceiptScheduler,
  ResumeTracker,
  type ReceiptTarget,
} from '../src/resume-tracker.js';

const GRANT: ResumeGrant = { claim: 'topicgate.r.a.b.c', window: 30 };
const body = (n: number) => ({ n });
const delivery = (seq: number) => ({ seq, key: `logs.${seq % 3}`, body: body(seq) });
const fingerprints = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => deliveryFingerprint(`logs.${(from + i) % 3}`, body(from + i)));

function tracker(seqs = 0): ResumeTracker {
  const t = new ResumeTracker();
  t.granted(GRANT);
  for (let seq = 1; seq <= seqs; seq++) t.delivered(delivery(seq));
  return t;
}

/** A receipt through the tracker's seq, acknowledged `ok`. */
function settle(t: ResumeTracker, ok = true): void {
  t.receiptAcked(t.receiptSent(), ok);
}

describe('ResumeTracker', () => {
  it('presents the fingerprints of every delivery from the last receipt\'s on, oldest first', () => {
    const t = tracker(10);
    expect(t.plan(0)).toEqual({ kind: 'resume', request: { claim: GRANT.claim, seq: 10, settled: 0, fingerprints: fingerprints(1, 10) } });
    settle(t); // receipt for 10: the broker settles 1-9 and keeps 10
    for (let seq = 11; seq <= 15; seq++) t.delivered(delivery(seq));
    expect(t.settled).toBe(10);
    expect(t.plan(0)).toEqual({ kind: 'resume', request: { claim: GRANT.claim, seq: 15, settled: 10, fingerprints: fingerprints(10, 15) } });
    expect(t.unsettledCount).toBe(15 - anchor(10));
  });

  it('presents a receipt whose ack never came as pending, and does not settle on it', () => {
    const t = tracker(5);
    settle(t);
    for (let seq = 6; seq <= 8; seq++) t.delivered(delivery(seq));
    t.receiptSent(); // through 8, in flight at the cut
    t.delivered(delivery(9));
    t.away(1_000);
    expect(t.plan(2_000)).toEqual({ kind: 'resume', request: { claim: GRANT.claim, seq: 9, settled: 5, pending: 8, fingerprints: fingerprints(5, 9) } });
  });

  it('a refused receipt settles nothing and is no longer pending', () => {
    const t = tracker(4);
    settle(t, false);
    expect(t.settled).toBe(0);
    expect(t.pending).toBeUndefined();
    expect(t.needsReceipt()).toBe(true);
  });

  it('a resync with a new claim makes everything so far settled and voids a receipt in flight', () => {
    const t = tracker(6);
    const sent = t.receiptSent();
    const next: ResumeGrant = { claim: 'topicgate.r.a.b.d', window: 30 };
    t.replaced(next);
    expect(t.settled).toBe(7); // one past: the new queue holds no anchor delivery
    expect(t.plan(0)).toEqual({ kind: 'resume', request: { claim: next.claim, seq: 6, settled: 7, fingerprints: [] } });
    expect(t.pending).toBeUndefined();
    t.receiptAcked(sent, true); // the old queue's receipt: void
    t.delivered(delivery(7));
    expect(t.plan(0)).toEqual({ kind: 'resume', request: { claim: next.claim, seq: 7, settled: 7, fingerprints: fingerprints(7, 7) } });
  });

  it('after a resume takes the gateway\'s settled, which resolves a receipt that was in flight', () => {
    const t = tracker(8);
    t.receiptSent();
    t.away(0);
    t.resumed(GRANT, 8);
    expect(t.settled).toBe(8);
    expect(t.pending).toBeUndefined();
    expect(t.unsettledCount).toBe(1); // 8 itself
    t.delivered(delivery(9));
    expect(t.plan(0)).toMatchObject({ kind: 'resume', request: { seq: 9, settled: 8, fingerprints: fingerprints(8, 9) } });
  });

  it('after a resume without settled keeps both possibilities', () => {
    const t = tracker(8);
    t.receiptSent();
    t.away(0);
    t.resumed(GRANT, undefined);
    expect(t.plan(0)).toMatchObject({ kind: 'resume', request: { seq: 8, settled: 0, pending: 8 } });
  });

  it('says expired once the window has passed since the first disconnect, and fresh without a grant', () => {
    const t = tracker(3);
    t.away(10_000);
    t.away(20_000); // a second loss before reconnecting does not restart the window
    expect(t.plan(10_000 + GRANT.window * 1000 - 1).kind).toBe('resume');
    expect(t.plan(10_000 + GRANT.window * 1000)).toEqual({ kind: 'expired' });
    t.forget();
    expect(t.plan(0)).toEqual({ kind: 'fresh' });
    expect(new ResumeTracker().plan(0)).toEqual({ kind: 'fresh' });
  });

  it('does not present a position it cannot prove: a seq gap, or more fingerprints than the gateway takes', () => {
    const gap = tracker(3);
    gap.delivered(delivery(5));
    expect(gap.plan(0)).toEqual({ kind: 'fresh' });
    const long = tracker(MAX_RESUME_FINGERPRINTS + 1);
    expect(long.plan(0)).toEqual({ kind: 'fresh' });
    settle(long);
    expect(long.plan(0).kind).toBe('resume');
  });

  it('restarts seq on a fresh grant and ignores repeats', () => {
    const t = tracker(3);
    t.delivered(delivery(2));
    expect(t.seq).toBe(3);
    const sent = t.receiptSent();
    t.granted(GRANT);
    t.receiptAcked(sent, true); // from the old subscription: void
    expect([t.seq, t.settled, t.unsettledCount]).toEqual([0, 0, 0]);
  });
});

describe('ReceiptScheduler', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  function setUp(subs: Array<[string, ResumeTracker]>) {
    const sent: Array<{ request: ReceivedRequest; ack: (result: ReceivedAck) => void }> = [];
    let connected = true;
    const scheduler = new ReceiptScheduler({
      targets: (): ReceiptTarget[] => subs.map(([id, tracker]) => ({ id, tracker })),
      connected: () => connected,
      send: (_event, request, ack) => sent.push({ request, ack }),
    });
    return { scheduler, sent, disconnect: () => (connected = false) };
  }

  it('sends one receipt for every subscription shortly after deliveries, and at most one in flight', async () => {
    const a = tracker(3);
    const b = tracker(1);
    const c = tracker(0);
    const { scheduler, sent } = setUp([['s1', a], ['s2', b], ['s3', c]]);
    scheduler.poke();
    await vi.advanceTimersByTimeAsync(RECEIPT_DELAY_MS - 1);
    expect(sent).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(sent.map((s) => s.request)).toEqual([{ seqs: { s1: 3, s2: 1 } }]);
    expect(a.pending).toBe(3);

    a.delivered(delivery(4));
    b.delivered(delivery(2));
    c.delivered(delivery(1)); // a subscription the first receipt did not cover: still one receipt per socket
    scheduler.poke();
    await vi.advanceTimersByTimeAsync(RECEIPT_DELAY_MS * 10);
    expect(sent).toHaveLength(1); // the first still awaits its ack

    sent[0]!.ack({ ok: true });
    expect([a.settled, b.settled]).toEqual([3, 1]);
    // A few arrived meanwhile: they wait for the delay, not for another burst.
    expect(sent).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(RECEIPT_DELAY_MS);
    expect(sent.map((s) => s.request)).toEqual([{ seqs: { s1: 3, s2: 1 } }, { seqs: { s1: 4, s2: 2, s3: 1 } }]);
    sent[1]!.ack({ ok: true });
    expect([a.settled, b.settled, c.settled]).toEqual([4, 2, 1]);
    await vi.advanceTimersByTimeAsync(RECEIPT_DELAY_MS * 10);
    expect(sent).toHaveLength(2); // nothing new: nothing sent
  });

  it('sends at once, without the delay, when a subscription has a batch of unconfirmed deliveries — also right after an ack', async () => {
    const a = tracker(RECEIPT_BATCH - 1);
    const { scheduler, sent } = setUp([['s1', a]]);
    scheduler.poke();
    await vi.advanceTimersByTimeAsync(0);
    expect(sent).toHaveLength(0); // one short of a batch: waits
    a.delivered(delivery(RECEIPT_BATCH));
    scheduler.poke();
    await vi.advanceTimersByTimeAsync(0);
    expect(sent.map((s) => s.request.seqs)).toEqual([{ s1: RECEIPT_BATCH }]);
    for (let n = RECEIPT_BATCH + 1; n <= 2 * RECEIPT_BATCH; n++) a.delivered(delivery(n));
    sent[0]!.ack({ ok: true });
    expect(sent.map((s) => s.request.seqs)).toEqual([{ s1: RECEIPT_BATCH }, { s1: 2 * RECEIPT_BATCH }]);
  });

  it('retries a refused receipt after a delay, not at once', async () => {
    const a = tracker(2);
    const { scheduler, sent } = setUp([['s1', a]]);
    scheduler.poke();
    await vi.advanceTimersByTimeAsync(RECEIPT_DELAY_MS);
    sent[0]!.ack({ ok: false, error: { code: 'unavailable', message: 'broker gone' } });
    expect(a.settled).toBe(0);
    await vi.advanceTimersByTimeAsync(RECEIPT_RETRY_DELAY_MS - 1);
    expect(sent).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(sent.map((s) => s.request.seqs)).toEqual([{ s1: 2 }, { s1: 2 }]);
  });

  it('after a disconnect ignores the old ack, keeps the receipt pending, and sends nothing while disconnected', async () => {
    const a = tracker(5);
    const { scheduler, sent, disconnect } = setUp([['s1', a]]);
    scheduler.poke();
    await vi.advanceTimersByTimeAsync(RECEIPT_DELAY_MS);
    disconnect();
    a.away(0);
    scheduler.interrupted();
    sent[0]!.ack({ ok: true }); // late, from the old socket
    expect(a.settled).toBe(0);
    expect(a.pending).toBe(5);
    scheduler.poke();
    await vi.advanceTimersByTimeAsync(RECEIPT_DELAY_MS * 10);
    expect(sent).toHaveLength(1);
  });

  it('sends nothing for subscriptions without a grant or without an id', async () => {
    const plain = new ResumeTracker();
    plain.delivered(delivery(1));
    const unsubscribedYet = tracker(2);
    const sent: ReceivedRequest[] = [];
    const scheduler = new ReceiptScheduler({
      targets: () => [{ id: 's1', tracker: plain }, { id: undefined, tracker: unsubscribedYet }],
      connected: () => true,
      send: (_event, request) => sent.push(request),
    });
    scheduler.poke();
    await vi.advanceTimersByTimeAsync(RECEIPT_DELAY_MS * 10);
    expect(sent).toEqual([]);
    expect(scheduler.inFlight).toBe(false);
  });
});
