/**
 * Resume and who may take a subscription up (docs/protocol.md §15.2), and
 * what is left on the broker when nobody comes back (§15.5).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mintToken } from '../../src/auth/token-verifier.js';
import { deleteGatewayExchanges, deleteQueueAsOperator, eventually, listQueues, publishJson, requireBroker, TEST_AMQP_URL } from '../support/broker.js';
import { spawnGateway } from '../support/child-gateway.js';
import { startTestGateway, stopTestGateways, type TestGateway } from '../support/gateway.js';
import { ResumingClient } from './resume-client.js';

const SECRET = 'resume-test-secret-long-enough-for-hs256';
const token = (sub: string, topics: string[]) => mintToken({ secret: SECRET, sub, topics, ttlSeconds: 3600 });
const clients: ResumingClient[] = [];

async function connect(gateway: TestGateway | { url: string }, t?: string): Promise<ResumingClient> {
  const c = await ResumingClient.connect(gateway.url, t);
  clients.push(c);
  return c;
}

async function detached(claim: string): Promise<void> {
  await eventually(async () => (await listQueues(claim)).some((q) => q.name === claim && q.consumers === 0), 'the queue detached');
}

beforeAll(requireBroker);
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
});
afterAll(stopTestGateways);

describe('taking a subscription up', () => {
  const authed = () => startTestGateway({ resumeWindowSeconds: 30, jwt: { secret: SECRET, algorithms: ['HS256'] } });

  it('is authorized again: a token that no longer allows the pattern is refused, and its queue deleted at once', async () => {
    const gateway = await authed();
    const c = await connect(gateway, token('alice', ['logs.#']));
    const { claim } = (await c.subscribe('a', 'logs.#')).grant;
    c.cut();
    await detached(claim);
    const acks = await c.reconnect(gateway.url, { token: token('alice', ['builds.#']) });
    expect(acks.get('a')).toMatchObject({ ok: false, error: { code: 'forbidden' } });
    // `forbidden` is final: nobody will resume it, so it does not wait out the 30 s window.
    expect(await listQueues(claim)).toEqual([]);
  });

  it("cannot be done with another subject's claim: that is a fresh subscription, and the claim's queue is untouched", async () => {
    const gateway = await authed();
    const alice = await connect(gateway, token('alice', ['logs.#']));
    const held = await alice.subscribe('a', 'logs.#');
    const { claim } = held.grant;
    alice.cut();
    await detached(claim);

    const mallory = await connect(gateway, token('mallory', ['logs.#']));
    const ack = await mallory.client.socket.timeout(10_000).emitWithAck('subscribe', { pattern: 'logs.#', resumable: true, resume: { claim, seq: 0, settled: 0, fingerprints: [] } });
    expect(ack).toMatchObject({ ok: true, resumed: false, reason: 'expired' });
    expect(ack.resume.claim).not.toBe(claim);
    expect((await listQueues(claim)).map((q) => [q.name, q.consumers])).toEqual([[claim, 0]]);

    // Alice still can.
    const acks = await alice.reconnect(gateway.url, { token: token('alice', ['logs.#']) });
    expect(acks.get('a')).toMatchObject({ ok: true, resumed: true });
  });

  it('a resumable queue deleted by an operator ends its subscription (queue_deleted), not renewed: the broker\'s cancel is told from a node going down by asking for the queue', async () => {
    const gateway = await authed();
    const c = await connect(gateway, token('alice', ['logs.#']));
    const held = await c.subscribe('a', 'logs.#');
    await deleteQueueAsOperator(held.grant.claim);
    const [notice] = await c.client.unsubscribed.waitForCount(1);
    expect(notice).toEqual({ id: held.id, reason: 'queue_deleted' });
    expect(c.resyncs).toEqual([]);
  });

  it('with the claim of another pattern: a fresh subscription', async () => {
    const gateway = await authed();
    const c = await connect(gateway, token('alice', ['logs.#', 'builds.#']));
    const { claim } = (await c.subscribe('a', 'logs.#')).grant;
    const ack = await c.client.socket.timeout(10_000).emitWithAck('subscribe', { pattern: 'builds.#', resumable: true, resume: { claim, seq: 0, settled: 0, fingerprints: [] } });
    expect(ack).toMatchObject({ ok: true, resumed: false, reason: 'expired' });
  });

  it('refuses a malformed resume as bad_request', async () => {
    const gateway = await authed();
    const c = await connect(gateway, token('alice', ['logs.#']));
    for (const resume of [
      { claim: 'x', seq: 2, settled: 4, fingerprints: [] },
      { claim: 'x', seq: 2, settled: 0, fingerprints: [1] },
      { claim: 'x', seq: -1, settled: 0, fingerprints: [] },
      { claim: 7, seq: 0, settled: 0, fingerprints: [] },
      'claim',
    ]) {
      const ack = await c.client.socket.timeout(10_000).emitWithAck('subscribe', { pattern: 'logs.#', resume });
      expect(ack, JSON.stringify(resume)).toMatchObject({ ok: false, error: { code: 'bad_request' } });
    }
  });
});

describe('nothing lingers', () => {
  it('a gateway killed with SIGKILL: its resumable queues are gone once the window has passed', { timeout: 60_000 }, async () => {
    const child = await spawnGateway({ TOPICGATE_RESUME_WINDOW: '2' });
    try {
      const c = await connect(child);
      const claims = [(await c.subscribe('a', 'logs.#')).grant.claim, (await c.subscribe('b', 'builds.#')).grant.claim];
      child.process.kill('SIGKILL');
      await child.exited;
      // The broker dropped its connection (and consumers) at once; x-expires deletes the queues after the window.
      await eventually(async () => {
        const queues = await listQueues('topicgate.r.');
        return claims.every((claim) => !queues.some((q) => q.name === claim));
      }, 'the queues of the killed gateway deleted by the broker', 20_000);
    } finally {
      // Still running only if a step above failed before the kill.
      if (child.process.exitCode === null && child.process.signalCode === null) child.process.kill('SIGKILL');
      await child.exited;
      // Its exchanges are durable: nothing of the broker's deletes them.
      await deleteGatewayExchanges(child.exchange);
    }
  });
});

describe('capacity', () => {
  it('past the room for resumable subscriptions (channel_max), subscriptions are made plain instead of failing, and room comes back', { timeout: 60_000 }, async () => {
    // A connection allowed 100 channels: room for a handful of resumable consumers beside the operation channels.
    const gateway = await startTestGateway({ amqpUrls: [`${TEST_AMQP_URL}?channelMax=100`], resumeWindowSeconds: 30 });
    const c = await connect(gateway);
    const acks: Array<{ ok: boolean; id?: string; resume?: unknown }> = [];
    // More than the connection has channels: without the check, opening the 92nd or so would fail the subscribe.
    const count = 100;
    for (let i = 0; i < count; i++) acks.push(await c.client.socket.timeout(10_000).emitWithAck('subscribe', { pattern: `cap.${i}`, resumable: true }));
    expect(acks.filter((ack) => !ack.ok)).toEqual([]);
    const granted = acks.filter((ack) => ack.resume !== undefined);
    expect(granted.length).toBeGreaterThan(0);
    expect(granted.length).toBeLessThan(count);
    // Every one of them works.
    for (let i = 0; i < count; i++) await publishJson(gateway.exchange, `cap.${i}`, { i });
    await c.client.messages.waitForCount(count);
    // Giving resumable ones back makes room again.
    for (const ack of granted) expect(await c.client.unsubscribe(ack.id)).toEqual({ ok: true });
    const again = await c.client.socket.timeout(10_000).emitWithAck('subscribe', { pattern: 'cap.again', resumable: true });
    expect(again).toMatchObject({ ok: true, resume: { window: 30 } });
  });
});
