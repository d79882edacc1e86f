/**
 * The receipt schedule of resumable subscriptions (docs/protocol.md §15.3),
 * as the SDK keeps it: one `received` in flight per socket, cumulative, sent
 * at once for a batch of RECEIPT_BATCH unconfirmed deliveries and otherwise
 * when the caller's delay fires (`flush(true)`).
 */
import { describe, expect, it } from 'vitest';
import { RECEIPT_BATCH, ReceiptScheduler } from '../src/clients/receipts.js';

function deliver(r: ReceiptScheduler, id: string, from: number, to: number): void {
  for (let seq = from; seq <= to; seq++) r.noteDelivery(id, seq);
}

describe('ReceiptScheduler', () => {
  it('holds a few deliveries for the delay, and sends at once for a batch, naming the last seq of each subscription', () => {
    const r = new ReceiptScheduler();
    deliver(r, 'a', 1, 2);
    r.noteDelivery('b', 1);
    expect(r.flush()).toBeNull();
    expect(r.hasUnsent).toBe(true);
    deliver(r, 'a', 3, RECEIPT_BATCH);
    expect(r.flush()).toEqual({ a: RECEIPT_BATCH, b: 1 });
    expect(r.pending).toBe(true);
  });

  it('sends what is unsent when the delay fires', () => {
    const r = new ReceiptScheduler();
    r.noteDelivery('a', 1);
    expect(r.flush(true)).toEqual({ a: 1 });
    expect(r.hasUnsent).toBe(false);
  });

  it('keeps one in flight: later batches wait for the ack, which sends a batch that arrived meanwhile in one request', () => {
    const r = new ReceiptScheduler();
    r.noteDelivery('a', 1);
    expect(r.flush(true)).toEqual({ a: 1 });
    deliver(r, 'a', 2, RECEIPT_BATCH + 1);
    expect(r.flush()).toBeNull();
    r.noteDelivery('b', 7);
    expect(r.flush(true)).toBeNull();
    expect(r.acknowledged()).toEqual({ a: RECEIPT_BATCH + 1, b: 7 });
    expect(r.requests).toBe(2);
  });

  it('after an ack, fewer than a batch wait for the delay; nothing new sends nothing', () => {
    const r = new ReceiptScheduler();
    r.noteDelivery('a', 5);
    expect(r.flush(true)).toEqual({ a: 5 });
    r.noteDelivery('a', 6);
    expect(r.acknowledged()).toBeNull();
    expect(r.pending).toBe(false);
    expect(r.flush(true)).toEqual({ a: 6 });
    r.acknowledged();
    expect(r.flush(true)).toBeNull();
  });

  it('only names subscriptions that moved, never a lower seq, and forgets ended ones', () => {
    const r = new ReceiptScheduler();
    r.noteDelivery('a', 3);
    r.noteDelivery('b', 4);
    r.flush(true);
    r.noteDelivery('b', 5);
    r.noteDelivery('a', 2); // out of order: never lowers
    r.acknowledged();
    expect(r.flush(true)).toEqual({ b: 5 });
    r.acknowledged();
    r.forget('b');
    r.noteDelivery('a', 4);
    expect(r.flush(true)).toEqual({ a: 4 });
  });
});
