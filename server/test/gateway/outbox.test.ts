/**
 * The outbox's ordering and overflow rules, against a stand-in for the one
 * piece of socket.io it drives (a connection whose transport drains when the
 * test says so). What it writes is decoded as a socket.io client would.
 */
import { EventEmitter } from 'node:events';
import type { Socket } from 'socket.io';
import { describe, expect, it } from 'vitest';
import { Outbox, type Stream } from '../../src/gateway/outbox.js';
import { createMetrics } from '../../src/metrics.js';

type Sent = { event: string; payload: unknown };

/** A socket whose transport is slow: nothing drains until `drain()`. */
function slowSocket() {
  const transport = new EventEmitter();
  const sent: Sent[] = [];
  const conn = Object.assign(new EventEmitter(), {
    transport,
    write(packet: string) {
      // `2["messages",[...]]`: a socket.io EVENT packet.
      const [event, payload] = JSON.parse(packet.slice(1)) as [string, unknown];
      sent.push({ event, payload });
    },
  });
  const socket = {
    connected: true,
    conn,
    emit(event: string, payload: unknown) {
      sent.push({ event, payload });
      return true;
    },
  };
  return { socket: socket as unknown as Socket, sent, drain: () => transport.emit('drain') };
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));
const stream = (id: string): Stream => ({ id, seq: 0, relaying: true, bounded: false });
const body = (n: number) => JSON.stringify({ n, pad: 'x'.repeat(80) });

describe('outbox', () => {
  it('batches one turn of deliveries into one frame', async () => {
    const { socket, sent } = slowSocket();
    const outbox = new Outbox(socket, createMetrics(() => 0), 1 << 20);
    const a = stream('a');
    for (let n = 1; n <= 3; n++) outbox.offer(a, 'k', body(n));
    await nextTurn();
    expect(sent).toHaveLength(1);
    expect(sent[0]!.event).toBe('messages');
    expect((sent[0]!.payload as { seq: number }[]).map((d) => d.seq)).toEqual([1, 2, 3]);
  });

  it('announces an overflow even while another subscription keeps the client busy', async () => {
    const { socket, sent, drain } = slowSocket();
    const limit = 1_000;
    const outbox = new Outbox(socket, createMetrics(() => 0), limit);
    const busy = stream('busy');
    const flooded = stream('flooded');
    outbox.offer(busy, 'b', body(0));
    await nextTurn(); // one frame in flight: the client reads slowly from here on
    for (let n = 1; n <= 30; n++) outbox.offer(flooded, 'f', body(n)); // past the limit: dropped
    // Every drain finds another delivery of `busy` waiting.
    for (let round = 1; round <= 5; round++) {
      drain();
      await nextTurn();
      outbox.offer(busy, 'b', body(round));
    }
    const resyncs = sent.filter((s) => s.event === 'resync');
    expect(resyncs).toEqual([{ event: 'resync', payload: { id: 'flooded', reason: 'overflow' } }]);
    // It follows the deliveries `flooded` did get, and nothing of `flooded` was dropped silently after it.
    const at = sent.findIndex((s) => s.event === 'resync');
    const deliveredBefore = sent.slice(0, at).flatMap((s) => (s.event === 'messages' ? (s.payload as { id: string }[]) : []));
    expect(deliveredBefore.filter((d) => d.id === 'flooded').length).toBeGreaterThan(0);
    expect(sent.slice(at + 1).flatMap((s) => (s.event === 'messages' ? (s.payload as { id: string }[]) : [])).filter((d) => d.id === 'flooded')).toEqual([]);
  });

  it('sends a control event behind the deliveries queued before it', async () => {
    const { socket, sent } = slowSocket();
    const outbox = new Outbox(socket, createMetrics(() => 0), 1 << 20);
    const a = stream('a');
    outbox.offer(a, 'k', body(1));
    outbox.offer(a, 'k', body(2));
    outbox.emit('unsubscribed', { id: 'a', reason: 'queue_deleted' });
    await nextTurn();
    expect(sent.map((s) => s.event)).toEqual(['messages', 'unsubscribed']);
    expect((sent[0]!.payload as { seq: number }[]).map((d) => d.seq)).toEqual([1, 2]);
  });
});
