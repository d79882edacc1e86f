/**
 * Floods (docs/protocol.md §9 limits): thousands of unknown events, subscribes past
 * the per-socket rate or subscription limit, unsubscribes and refreshes of
 * garbage. Every acked event gets its ack (limit_exceeded where a limit is
 * hit), no queue appears beyond what was acknowledged, the gateway stays up,
 * and a well-behaved client is served normally afterwards.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../support/broker.js';
import { connectClient, startTestGateway, stopTestGateways } from '../support/gateway.js';
import { createAccess } from '../../src/auth/access-from-config.js';
import type { Access } from '../../src/gateway/access.js';
import { REFRESHES_PER_SECOND } from '../../src/gateway/client-session.js';
import { quietLog } from '../support/broker.js';
import { ackOf, assertWellFormed, Harness, rawConnect, SECRET, token, waitForBroker } from './harness.js';

const RATE = 20;
const MAX_SUBS = 10;

/** Rate-limited gateway (auth off). */
let rated: Harness;
/** Subscription-limited gateway (auth on, so refresh can be flooded too). */
let limited: Harness;

beforeAll(async () => {
  await waitForBroker();
  rated = await Harness.start({ subscribesPerSecond: RATE, maxSubscriptions: 100_000 });
  limited = await Harness.start(
    { maxSubscriptions: MAX_SUBS, subscribesPerSecond: 1_000_000, jwt: { secret: SECRET, algorithms: ['HS256'] } },
    { bystanderToken: token({ sub: 'bystander', topics: ['bystander.#'] }) },
  );
}, 60_000);
afterEach(async () => {
  await Promise.all([rated.verifyHealthy(), limited.verifyHealthy()]);
}, 90_000);
afterAll(async () => {
  rated.bystander.close();
  limited.bystander.close();
  await stopTestGateways();
});

/** Fires `n` acked events at once; returns every ack (a missing ack fails with its index). */
async function burst(socket: import('socket.io-client').Socket, n: number, event: string, payload: (i: number) => unknown): Promise<unknown[]> {
  return Promise.all(Array.from({ length: n }, (_, i) => ackOf(socket, event, [payload(i)], 30_000)));
}

function countCodes(acks: unknown[], success: 'id' | 'plain'): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const [i, raw] of acks.entries()) {
    const ack = assertWellFormed(raw, success, `ack #${i}`);
    const key = ack.ok ? 'ok' : ack.error.code;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

describe('floods of unknown events', () => {
  it('5,000 unknown events without an ack and 3,000 with one: every ack is bad_request, the socket stays usable', async () => {
    const s = limited.track(await rawConnect(limited.url, { auth: { token: token({ topics: ['flood.#'] }) } }));
    for (let i = 0; i < 5_000; i++) s.emit(`junk-${i % 97}`, { i });
    const acks = await burst(s, 3_000, 'junk', (i) => ({ i }));
    expect(countCodes(acks, 'plain')).toEqual({ bad_request: 3_000 });
    expect(s.connected).toBe(true);
    const ack = await ackOf(s, 'subscribe', [{ pattern: 'flood.ok' }]);
    expect(ack).toMatchObject({ ok: true });
    expect(await limited.extraQueues()).toHaveLength(1);
  });
});

describe('subscribe floods past the rate limit', () => {
  it(`2,000 concurrent subscribes at ${RATE}/s: the rest get limit_exceeded, only acknowledged ones have queues`, async () => {
    const c = await rated.client();
    const started = Date.now();
    const acks = await burst(c.socket, 2_000, 'subscribe', (i) => ({ pattern: `rate.${i}.#` }));
    const elapsed = (Date.now() - started) / 1000;
    const counts = countCodes(acks, 'id');
    expect(Object.keys(counts).sort(), JSON.stringify(counts)).toEqual(['limit_exceeded', 'ok']);
    expect(counts.ok!, `${counts.ok} accepted in ${elapsed}s`).toBeGreaterThanOrEqual(1);
    expect(counts.ok!, `${counts.ok} accepted in ${elapsed}s`).toBeLessThanOrEqual(RATE + Math.ceil(RATE * elapsed) + 1);
    const limitAck = acks.find((a) => !(a as { ok: boolean }).ok) as { error: { message: string } };
    expect(limitAck.error.message).toMatch(/rate|fast|per second|slow/i);
    expect(await rated.extraQueues()).toHaveLength(counts.ok!);
    const ids = acks.flatMap((a) => ((a as { ok: boolean; id?: string }).ok ? [(a as { id: string }).id] : []));
    expect(new Set(ids).size).toBe(ids.length);
    // An accepted subscription works even in the middle of the flood's aftermath.
    await rated.publish('rate.0.x', { n: 0 });
    if (ids.length > 0 && (acks[0] as { ok: boolean }).ok) await c.messages.waitFor((m) => m.id === ids[0]);
    // The bucket refills: after a second the same socket may subscribe again. Time itself is under test here, so this wait stays.
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    expect(await c.subscribe('rate.after')).toMatchObject({ ok: true });
  });

  it('a rate-limited socket does not slow down other sockets', async () => {
    const flooder = await rated.client();
    const flood = burst(flooder.socket, 2_000, 'subscribe', (i) => ({ pattern: `slow.${i}` }));
    const other = await rated.client();
    const acks = await Promise.all(Array.from({ length: RATE }, (_, i) => other.subscribe(`polite.${i}`)));
    expect(acks.every((a) => a.ok), JSON.stringify(acks.filter((a) => !a.ok)[0])).toBe(true);
    await flood;
  });

  it('2,000 subscribes with invalid patterns create no queue and each gets an error ack', async () => {
    const c = await rated.client();
    const counts = countCodes(await burst(c.socket, 2_000, 'subscribe', (i) => ({ pattern: `bad..${i}` })), 'id');
    expect(counts.ok).toBeUndefined();
    for (const code of Object.keys(counts)) expect(['invalid_pattern', 'limit_exceeded']).toContain(code);
    expect(await rated.extraQueues()).toEqual([]);
  });
});

describe('subscribe floods past the subscription limit', () => {
  it(`2,000 concurrent subscribes with a limit of ${MAX_SUBS}: exactly ${MAX_SUBS} succeed, the rest get limit_exceeded`, async () => {
    const c = await limited.client(token({ topics: ['lim.#'] }));
    const acks = await burst(c.socket, 2_000, 'subscribe', (i) => ({ pattern: `lim.${i}` }));
    expect(countCodes(acks, 'id')).toEqual({ ok: MAX_SUBS, limit_exceeded: 2_000 - MAX_SUBS });
    expect(await limited.extraQueues()).toHaveLength(MAX_SUBS);
    const ids = acks.flatMap((a) => ((a as { ok: boolean }).ok ? [(a as { id: string }).id] : []));
    // Freeing one slot lets exactly one more in.
    expect(await c.unsubscribe(ids[0])).toEqual({ ok: true });
    const again = await burst(c.socket, 50, 'subscribe', (i) => ({ pattern: `lim.again.${i}` }));
    expect(countCodes(again, 'id')).toEqual({ ok: 1, limit_exceeded: 49 });
    expect(await limited.extraQueues()).toHaveLength(MAX_SUBS);
  });

  it('refused subscribes (forbidden, invalid) never count against the limit', async () => {
    const c = await limited.client(token({ topics: ['mine.#'] }));
    const refused = await burst(c.socket, 500, 'subscribe', (i) => ({ pattern: i % 2 ? `theirs.${i}` : `mine..${i}` }));
    expect(Object.keys(countCodes(refused, 'id')).sort()).toEqual(['forbidden', 'invalid_pattern']);
    const acks = await burst(c.socket, MAX_SUBS, 'subscribe', (i) => ({ pattern: `mine.${i}` }));
    expect(countCodes(acks, 'id')).toEqual({ ok: MAX_SUBS });
  });

  it('twenty sockets each flooding 200 subscribes get exactly the limit each', async () => {
    const clients = await Promise.all(Array.from({ length: 20 }, () => limited.client(token({ topics: ['many.#'] }))));
    const all = await Promise.all(clients.map((c, k) => burst(c.socket, 200, 'subscribe', (i) => ({ pattern: `many.${k}.${i}` }))));
    for (const acks of all) expect(countCodes(acks, 'id')).toEqual({ ok: MAX_SUBS, limit_exceeded: 200 - MAX_SUBS });
    expect(await limited.extraQueues()).toHaveLength(20 * MAX_SUBS);
    // A well-behaved newcomer is served at once.
    const polite = await limited.client(token({ topics: ['polite.#'] }));
    const id = await polite.mustSubscribe('polite.#');
    await limited.publish('polite.1', { n: 1 });
    await polite.messages.waitFor((m) => m.id === id);
  });

  it('500 subscribe/unsubscribe cycles at the limit never leak a slot or a queue', async () => {
    const c = await limited.client(token({ topics: ['cycle.#'] }));
    const held = await Promise.all(Array.from({ length: MAX_SUBS - 1 }, (_, i) => c.mustSubscribe(`cycle.held.${i}`)));
    for (let i = 0; i < 500; i++) {
      const id = await c.mustSubscribe(`cycle.${i}`);
      expect(await c.unsubscribe(id)).toEqual({ ok: true });
    }
    expect(await limited.extraQueues()).toHaveLength(held.length);
    expect(await c.subscribe('cycle.last')).toMatchObject({ ok: true });
    expect(await c.subscribe('cycle.over')).toMatchObject({ ok: false, error: { code: 'limit_exceeded' } });
  });
});

describe('floods of other requests', () => {
  it('3,000 unsubscribes of unknown or malformed ids: unknown_subscription / bad_request, nothing else touched', async () => {
    const c = await limited.client(token({ topics: ['keep.#'] }));
    const id = await c.mustSubscribe('keep.#');
    const acks = await burst(c.socket, 3_000, 'unsubscribe', (i) => (i % 3 === 0 ? { id: `s-${i}` } : i % 3 === 1 ? { id: i } : 'garbage'));
    const counts = countCodes(acks, 'plain');
    expect(Object.keys(counts).sort(), JSON.stringify(counts)).toEqual(['bad_request', 'unknown_subscription']);
    // Strings that name no subscription: unknown_subscription; a non-object: bad_request; a numeric id: either.
    expect(counts.unknown_subscription!).toBeGreaterThanOrEqual(1_000);
    expect(counts.bad_request!).toBeGreaterThanOrEqual(1_000);
    await limited.publish('keep.1', { n: 1 });
    await c.messages.waitFor((m) => m.id === id);
  });

  it(`2,000 refreshes with garbage tokens: ${REFRESHES_PER_SECOND} a second refused with unauthorized, the rest with limit_exceeded, the connection keeps its token`, async () => {
    const c = await limited.client(token({ topics: ['fresh.#'] }));
    const id = await c.mustSubscribe('fresh.#');
    const acks = await burst(c.socket, 2_000, 'refresh', (i) => ({ token: `garbage.${i}.x` }));
    const counts = countCodes(acks, 'plain');
    expect(Object.keys(counts).sort()).toEqual(['limit_exceeded', 'unauthorized']);
    expect(counts.unauthorized!).toBeLessThanOrEqual(REFRESHES_PER_SECOND * 3); // the burst, plus what refills while the flood is answered
    expect(counts.limit_exceeded!).toBe(2_000 - counts.unauthorized!);
    expect(c.socket.connected).toBe(true);
    await limited.publish('fresh.1', { n: 1 });
    await c.messages.waitFor((m) => m.id === id);
    expect(c.unsubscribed.items).toEqual([]);
  });

  it('200 connections opened and closed at once leave no trace', async () => {
    const sockets = await Promise.all(
      Array.from({ length: 200 }, () => rawConnect(limited.url, { auth: { token: token({ topics: ['churn.#'] }) } })),
    );
    for (const [i, s] of sockets.entries()) s.emit('subscribe', { pattern: `churn.${i}` }, () => undefined);
    for (const s of sockets) s.close();
    await eventually(async () => (await limited.extraQueues()).length === 0, 'every churned socket\'s queue deleted', 20_000);
  });
});

describe('refresh', () => {
  it('with the same topics re-checks no subscription; with narrower ones, each once', async () => {
    const jwt = { secret: SECRET, algorithms: ['HS256'] };
    const real = createAccess(jwt, quietLog);
    let checks = 0;
    const access: Access = { verify: (t) => real.verify(t), authorize: (p, pattern) => (checks++, real.authorize(p, pattern)) };
    const gateway = await startTestGateway({ jwt }, { access });
    const c = await connectClient(gateway.url, token({ sub: 'refresher', topics: ['r.#'] }));
    try {
      for (let i = 0; i < 50; i++) await c.mustSubscribe(`r.${i}`);
      checks = 0;
      expect(await c.emitWithAck('refresh', { token: token({ sub: 'refresher', topics: ['r.#'], ttl: 7200 }) })).toEqual({ ok: true });
      expect(checks).toBe(0);
      expect(await c.emitWithAck('refresh', { token: token({ sub: 'refresher', topics: ['r.1'] }) })).toEqual({ ok: true });
      expect(checks).toBe(50);
      expect((await c.unsubscribed.waitForCount(49)).every((n) => n.reason === 'forbidden')).toBe(true);
    } finally {
      c.close();
    }
  });
});
