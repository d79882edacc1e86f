/**
 * A client that stops reading must not grow the gateway without bound: past
 * its buffer limit its deliveries are dropped, fast clients lose nothing, and
 * the slow one is told `resync { reason: "overflow" }` once it drains.
 */
import { readFileSync } from 'node:fs';
import type { Socket as TcpSocket } from 'node:net';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deleteGatewayExchanges, requireBroker, TEST_AMQP_URL } from '../support/broker.js';
import { spawnGateway, type ChildGateway } from '../support/child-gateway.js';
import { connectClient, type TestClient } from '../support/gateway.js';

const BUFFER_LIMIT = 1024 * 1024;
const MESSAGES = 60_000;
const BODY_BYTES = 1024;

let child: ChildGateway;

beforeAll(async () => {
  await requireBroker();
  child = await spawnGateway({ TOPICGATE_CLIENT_BUFFER_BYTES: String(BUFFER_LIMIT), TOPICGATE_LOG_LEVEL: 'warn' });
});
afterAll(async () => {
  child.process.kill('SIGKILL');
  await child.exited;
  await deleteGatewayExchanges(child.exchange);
});

function rssBytes(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(match![1]) * 1024;
}

/** Stops reading from the socket at the TCP level, as a frozen browser tab would. */
function stall(c: TestClient): () => void {
  const tcp = (c.socket.io.engine.transport as unknown as { ws: { _socket: TcpSocket } }).ws._socket;
  tcp.pause();
  return () => tcp.resume();
}

/**
 * Publishes `count` messages in chunks; before each next chunk, `keepUp` waits
 * until the fast clients have received everything so far. "Fast" is thus
 * defined by what the clients do, not by how busy this 2-core box happens to be.
 */
async function publishMany(exchange: string, count: number, keepUp: (sent: number) => Promise<unknown> = async () => undefined): Promise<void> {
  const connection = await amqp.connect(TEST_AMQP_URL);
  const channel = await connection.createConfirmChannel();
  const padding = 'x'.repeat(BODY_BYTES - 30);
  const chunk = 200;
  for (let sent = 0; sent < count; ) {
    const end = Math.min(count, sent + chunk);
    for (let n = sent; n < end; n++) {
      if (!channel.publish(exchange, 'load.tick', Buffer.from(JSON.stringify({ n, padding })))) {
        await new Promise((resolve) => channel.once('drain', resolve));
      }
    }
    await channel.waitForConfirms();
    sent = end;
    await keepUp(sent);
  }
  await connection.close();
}

describe('a client that stops reading', () => {
  it('loses deliveries past its buffer limit while fast clients get every message and gateway memory stays bounded', async () => {
    const slow = await connectClient(child.url);
    const fast = [await connectClient(child.url), await connectClient(child.url)];
    const slowId = await slow.mustSubscribe('load.#');
    const fastIds = await Promise.all(fast.map((c) => c.mustSubscribe('load.#')));
    const resume = stall(slow);

    const baseline = rssBytes(child.process.pid!);
    let peak = baseline;
    const sampler = setInterval(() => (peak = Math.max(peak, rssBytes(child.process.pid!))), 50);
    try {
      await publishMany(child.exchange, MESSAGES, (sent) => Promise.all(fast.map((c) => c.messages.waitForCount(sent, 30_000))));
      for (const [i, c] of fast.entries()) {
        const got = c.messages.items;
        expect(got.map((m) => m.body.n)).toEqual(Array.from({ length: MESSAGES }, (_, n) => n));
        expect(got.at(-1)).toMatchObject({ id: fastIds[i], seq: MESSAGES });
      }
    } finally {
      clearInterval(sampler);
    }
    const growth = peak - baseline;
    // The slow client was sent ~60 MB; holding it would grow RSS by well over that.
    expect(growth, `gateway RSS grew by ${(growth / 2 ** 20).toFixed(1)} MiB`).toBeLessThan(48 * 2 ** 20);

    resume();
    expect(await slow.resyncs.waitFor((r) => r.id === slowId, 30_000)).toEqual({ id: slowId, reason: 'overflow' });
    const received = slow.deliveriesFor(slowId);
    expect(received.length).toBeLessThan(MESSAGES);
    expect(received.map((m) => m.seq)).toEqual(Array.from({ length: received.length }, (_, i) => i + 1));
    expect(fast.every((c) => c.resyncs.items.length === 0)).toBe(true);

    // After the resync the slow client is served again.
    const before = slow.deliveriesFor(slowId).length;
    await publishMany(child.exchange, 1);
    const next = await slow.messages.waitFor((m) => m.id === slowId && m.seq === before + 1);
    expect(next.body.n).toBe(0);
    for (const c of [slow, ...fast]) c.close();
  }, 120_000);
});
