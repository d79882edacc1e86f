/**
 * Races a hostile or just unlucky client can start (docs/protocol.md §4, §8): double
 * unsubscribes, disconnects with requests in flight, refreshes racing
 * subscribes and each other, token expiry mid-flood, reconnects. Whatever the
 * interleaving: every request gets one consistent answer, no subscription
 * outlives its socket or its authorization, and no queue or channel leaks.
 */
import type { Delivery, UnsubscribedNotice } from '@topicgate/shared';
import { io } from 'socket.io-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { channelCount, eventually, listQueues, uniqueName } from '../support/broker.js';
import { connectClient, startTestGateway, stopTestGateways, TestClient } from '../support/gateway.js';
import { ackOf, assertWellFormed, Harness, rawConnect, SECRET, token, waitForBroker } from './harness.js';

let h: Harness;

beforeAll(async () => {
  await waitForBroker();
  h = await Harness.start({ jwt: { secret: SECRET, algorithms: ['HS256'] } }, { bystanderToken: token({ sub: 'bystander', topics: ['bystander.#'] }) });
});
afterEach(async () => {
  await h.verifyHealthy();
}, 90_000);
afterAll(async () => {
  h.bystander.close();
  await stopTestGateways();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const okIds = (acks: unknown[]) => acks.flatMap((a) => ((a as { ok: boolean }).ok ? [(a as { id: string }).id] : []));

describe('unsubscribe races', () => {
  it('unsubscribing the same id twice at once: exactly one ok, the other unknown_subscription', async () => {
    const c = await h.client(token({ topics: ['twice.#'] }));
    const ids = await Promise.all(Array.from({ length: 20 }, (_, i) => c.mustSubscribe(`twice.${i}`)));
    const pairs = await Promise.all(ids.map((id) => Promise.all([c.unsubscribe(id), c.unsubscribe(id)])));
    for (const [i, pair] of pairs.entries()) {
      const oks = pair.filter((a) => a.ok);
      expect(oks, `${ids[i]}: ${JSON.stringify(pair)}`).toHaveLength(1);
      expect(pair.find((a) => !a.ok), `${ids[i]}: ${JSON.stringify(pair)}`).toMatchObject({ ok: false, error: { code: 'unknown_subscription' } });
    }
    expect(await h.extraQueues()).toEqual([]);
  });

  it('five concurrent unsubscribes of one id: exactly one ok', async () => {
    const c = await h.client(token({ topics: ['five.#'] }));
    const id = await c.mustSubscribe('five.#');
    const acks = await Promise.all(Array.from({ length: 5 }, () => c.unsubscribe(id)));
    expect(acks.filter((a) => a.ok), JSON.stringify(acks)).toHaveLength(1);
  });

  it('after the unsubscribe ack, no delivery for that id arrives, even with messages streaming in', async () => {
    const c = await h.client(token({ topics: ['stream.#'] }));
    const keep = await c.mustSubscribe('stream.#');
    const gone = await c.mustSubscribe('stream.#');
    let publishing = true;
    const publisher = (async () => {
      for (let n = 0; publishing; n++) await h.publish('stream.x', { n });
    })();
    await c.messages.waitFor((m) => m.id === gone && m.seq >= 20);
    expect(await c.unsubscribe(gone)).toEqual({ ok: true });
    const atAck = c.deliveriesFor(gone).length;
    const keptAtAck = c.deliveriesFor(keep).length;
    await c.messages.waitFor((m) => m.id === keep && m.seq >= keptAtAck + 50);
    publishing = false;
    await publisher;
    expect(c.deliveriesFor(gone).length, 'deliveries for an id after its unsubscribe ack').toBe(atAck);
    // And the subscription that stayed got a gap-free sequence.
    const seqs = c.deliveriesFor(keep).map((m) => m.seq);
    expect(seqs).toEqual(seqs.map((_, i) => i + 1));
  });
});

describe('disconnect races', () => {
  it('subscribe and disconnect in the same tick, on 30 sockets: no queue survives', async () => {
    const sockets = await Promise.all(Array.from({ length: 30 }, () => rawConnect(h.url, { auth: { token: token({ topics: ['tick.#'] }) } })));
    for (const [k, s] of sockets.entries()) {
      for (let i = 0; i < 3; i++) s.emit('subscribe', { pattern: `tick.${k}.${i}` }, () => undefined);
      s.disconnect();
    }
    await eventually(async () => (await h.extraQueues()).length === 0, 'no queue left by sockets that vanished mid-subscribe', 20_000);
  });

  it('disconnect while 100 subscribes are in flight, on 10 sockets: every queue is deleted, no channel leaks', async () => {
    const baseline = await channelCount(h.gateway.connectionName);
    await Promise.all(
      Array.from({ length: 10 }, async (_, k) => {
        const s = await rawConnect(h.url, { auth: { token: token({ topics: ['flight.#'] }) } });
        const first = new Promise<void>((resolve) => {
          for (let i = 0; i < 100; i++) s.emit('subscribe', { pattern: `flight.${k}.${i}` }, () => resolve());
        });
        await first;
        s.disconnect();
      }),
    );
    await eventually(async () => (await h.extraQueues()).length === 0, 'queues of in-flight subscribes deleted', 20_000);
    await eventually(async () => (await channelCount(h.gateway.connectionName)) === baseline, 'channel count back to baseline', 20_000);
  });

  it('disconnect while unsubscribes are in flight leaves nothing behind', async () => {
    const c = await h.client(token({ topics: ['unflight.#'] }));
    const ids = await Promise.all(Array.from({ length: 50 }, (_, i) => c.mustSubscribe(`unflight.${i}`)));
    for (const id of ids) c.socket.emit('unsubscribe', { id }, () => undefined);
    c.close();
    await eventually(async () => (await h.extraQueues()).length === 0, 'every queue deleted', 20_000);
  });

  it('the gateway shutting down while clients flood subscribes: every request is answered or its socket closed, and no queue or channel is left', async () => {
    const gw = await startTestGateway({ jwt: { secret: SECRET, algorithms: ['HS256'] } });
    const clients = await Promise.all(Array.from({ length: 5 }, () => rawConnect(gw.url, { auth: { token: token({ topics: ['down.#'] }) } })));
    const outcomes = clients.flatMap((s, k) =>
      Array.from({ length: 100 }, (_, i) =>
        s.timeout(15_000).emitWithAck('subscribe', { pattern: `down.${k}.${i}` }).then(
          (ack: unknown) => assertWellFormed(ack, 'id', 'subscribe during shutdown').ok,
          () => (s.connected ? 'NO ACK WHILE CONNECTED' : 'closed'),
        ),
      ),
    );
    // Close once the gateway is busy with the flood (one answered; the rest in flight), not after a guessed delay.
    await Promise.race(outcomes);
    await gw.close();
    const results = await Promise.all(outcomes);
    expect(results.filter((r) => r === 'NO ACK WHILE CONNECTED')).toEqual([]);
    for (const s of clients) s.close();
    expect(await listQueues(gw.queuePrefix)).toEqual([]);
    await eventually(async () => (await channelCount(gw.connectionName)) === 0, 'the closed gateway has no channel left');
  });
});

describe('refresh races', () => {
  it('a subscribe refused after its declare (a narrower token arrived meanwhile) sends no delivery for the id it never acknowledged', async () => {
    const sub = uniqueName('racer');
    const gateway = await startTestGateway({ jwt: { secret: SECRET, algorithms: ['HS256'] } });
    const c = await connectClient(gateway.url, token({ sub, topics: ['held.#', 'kept.#'] }));
    try {
      // Hold the declare once it is consuming and a message has reached it, until the refresh is answered.
      const mq = gateway.mq;
      const realStart = mq.startConsuming.bind(mq);
      let delivered!: () => void;
      const deliveredWhileDeclaring = new Promise<void>((resolve) => (delivered = resolve));
      let release!: () => void;
      const refreshed = new Promise<void>((resolve) => (release = resolve));
      mq.startConsuming = async (pattern, handler, options) => {
        const consumer = await realStart(pattern, (m) => (handler(m), delivered()), options);
        await mq.produce('held.1', { early: true });
        await deliveredWhileDeclaring;
        await refreshed;
        return consumer;
      };
      const ack = c.subscribe('held.#');
      await deliveredWhileDeclaring;
      expect(await c.emitWithAck('refresh', { token: token({ sub, topics: ['kept.#'] }) })).toEqual({ ok: true });
      release();
      expect(await ack).toMatchObject({ ok: false, error: { code: 'forbidden' } });
      mq.startConsuming = realStart;
      // A fence on a subscription that stays: everything sent before it has arrived.
      const kept = await c.mustSubscribe('kept.#');
      await mq.produce('kept.fence', {});
      await c.messages.waitFor((m) => m.id === kept);
      expect(c.messages.items.filter((m) => m.id !== kept)).toEqual([]);
    } finally {
      c.close();
    }
  });

  it('a refresh that narrows the token, racing 40 subscribes: no subscription the new token forbids stays live', async () => {
    const sub = uniqueName('racer');
    const c = await h.client(token({ sub, topics: ['ra.#', 'rb.#'] }));
    const acks: Array<Promise<{ pattern: string; ack: unknown }>> = [];
    for (let i = 0; i < 40; i++) {
      const pattern = `${i % 2 ? 'rb' : 'ra'}.${i}`;
      acks.push(ackOf(c.socket, 'subscribe', [{ pattern }]).then((ack) => ({ pattern, ack })));
      if (i === 20) acks.push(ackOf(c.socket, 'refresh', [{ token: token({ sub, topics: ['ra.#'] }) }]).then((ack) => ({ pattern: 'REFRESH', ack })));
    }
    const results = await Promise.all(acks);
    const refresh = results.find((r) => r.pattern === 'REFRESH')!.ack;
    expect(refresh).toEqual({ ok: true });
    const subs = results.filter((r) => r.pattern !== 'REFRESH');
    for (const r of subs) {
      const ack = assertWellFormed(r.ack, 'id', r.pattern);
      if (r.pattern.startsWith('ra.')) expect(ack.ok, `${r.pattern}: ${JSON.stringify(ack)}`).toBe(true);
      else if (!ack.ok) expect(ack.error.code, r.pattern).toBe('forbidden');
    }
    const revocable = subs.filter((r) => r.pattern.startsWith('rb.') && (r.ack as { ok: boolean }).ok);
    // Every rb subscription that was accepted is ended with unsubscribed forbidden. No wait: a refresh's
    // notices precede its ack (docs/protocol.md §8.5), and every ack is in.
    const survivors = revocable.filter((r) => !c.unsubscribed.items.some((n) => n.id === (r.ack as { id: string }).id));
    if (survivors.length > 0) {
      // Already a failure; say whether the survivors are really live: publish to their keys, then a fence on ra.0 (live).
      for (const r of survivors) await h.publish(r.pattern, { leak: r.pattern });
      await h.publish('ra.0', { fence: 'survivors' });
      await c.messages.waitFor((m) => m.body.fence === 'survivors');
    }
    const leaked = survivors.map((r) => `${r.pattern} (emitted ${Number(r.pattern.split('.')[1]) > 20 ? 'after' : 'before'} the refresh; deliveries after refresh: ${c.messages.items.filter((m) => m.body.leak === r.pattern).length})`);
    expect(
      leaked,
      `${revocable.length} rb subscriptions accepted; ${survivors.length} never ended although the refreshed token forbids them; ` +
        `queues now ${(await h.extraQueues()).length} (the token allows ${subs.filter((r) => r.pattern.startsWith('ra.')).length})`,
    ).toEqual([]);
    for (const n of c.unsubscribed.items) expect(n.reason).toBe('forbidden');
    const live = subs.filter((r) => r.pattern.startsWith('ra.')).length;
    await eventually(async () => (await h.extraQueues()).length === live, `exactly the ${live} allowed queues remain`, 10_000);
    // Nothing under rb.# reaches this socket any more.
    const before = c.messages.items.length;
    await h.publish('rb.1', { late: true });
    await h.publish('ra.0', { marker: 'after' });
    await c.messages.waitFor((m) => m.key === 'ra.0' && m.body.marker === 'after');
    expect(c.messages.items.slice(before).filter((m) => m.key.startsWith('rb.'))).toEqual([]);
  });

  it('minimal: one subscribe still in flight when a narrowing refresh is applied is refused or ended, never left live', async () => {
    const sub = uniqueName('racer');
    const c = await h.client(token({ sub, topics: ['ma.#', 'mb.#'] }));
    const order: string[] = [];
    const subscribed = c.subscribe('mb.1').then((ack) => (order.push('subscribe ack'), ack));
    const refreshed = c.emitWithAck('refresh', { token: token({ sub, topics: ['ma.#'] }) }).then((ack) => (order.push('refresh ack'), ack));
    const [ack, refresh] = await Promise.all([subscribed, refreshed]);
    expect(refresh).toEqual({ ok: true });
    if (!ack.ok) {
      expect(ack.error.code).toBe('forbidden');
      return;
    }
    // Acked before the refresh took effect: the refresh must then have ended it and deleted its queue. No wait:
    // a refresh's notices precede its ack (docs/protocol.md §8.5), and a notice is sent once the queue is gone (§6.3).
    // With its queue gone (checked below) a leak has nowhere to be routed; a fence on a pattern the new token
    // allows, published after it, bounds the wait for one a live subscription would still relay.
    const fence = await c.mustSubscribe('ma.fence');
    await h.publish('mb.1', { leak: true });
    await h.publish('ma.fence', { fence: true });
    await c.messages.waitFor((m) => m.id === fence);
    expect(
      { notices: c.unsubscribed.items, queues: (await listQueues(`${h.gateway.queuePrefix}${ack.id}`)).length, deliveredAfterRefresh: c.deliveriesFor(ack.id).length },
      `subscribe acked ok (ack order: ${order.join(', ')}) for a pattern the refreshed token forbids`,
    ).toEqual({ notices: [{ id: ack.id, reason: 'forbidden' }], queues: 0, deliveredAfterRefresh: 0 });
  });

  it('two refreshes racing each other: the subscriptions left are exactly those the winning token allows', async () => {
    const sub = uniqueName('racer');
    const c = await h.client(token({ sub, topics: ['xa.#', 'xb.#'] }));
    const a = await c.mustSubscribe('xa.1');
    const b = await c.mustSubscribe('xb.1');
    const [ra, rb] = await Promise.all([
      c.emitWithAck('refresh', { token: token({ sub, topics: ['xa.#'] }) }),
      c.emitWithAck('refresh', { token: token({ sub, topics: ['xb.#'] }) }),
    ]);
    expect([ra, rb]).toEqual([{ ok: true }, { ok: true }]);
    // No wait needed: the unsubscribed notices a refresh causes precede its ack (docs/protocol.md §8).
    const probeA = (await c.subscribe('xa.probe')).ok;
    const probeB = (await c.subscribe('xb.probe')).ok;
    expect(probeA !== probeB, `exactly one token is in effect (xa allowed: ${probeA}, xb allowed: ${probeB})`).toBe(true);
    const ended = new Set(c.unsubscribed.items.map((n: UnsubscribedNotice) => n.id));
    if (probeA) expect(ended.has(b), 'xb.1 ended under the xa token').toBe(true);
    if (probeB) expect(ended.has(a), 'xa.1 ended under the xb token').toBe(true);
    // And the broker agrees: live subscriptions = not ended + the successful probe.
    const live = [a, b].filter((id) => !ended.has(id)).length + 1;
    await eventually(async () => (await h.extraQueues()).length === live, `${live} queues`, 10_000);
  });

  it('a refresh revoking a subscription while the client unsubscribes it: ended exactly once', async () => {
    const sub = uniqueName('racer');
    const c = await h.client(token({ sub, topics: ['ya.#', 'yb.#'] }));
    const ids = await Promise.all(Array.from({ length: 10 }, (_, i) => c.mustSubscribe(`yb.${i}`)));
    const unsubs = ids.map((id) => c.unsubscribe(id));
    const refresh = c.emitWithAck('refresh', { token: token({ sub, topics: ['ya.#'] }) });
    const acks = await Promise.all(unsubs);
    expect(await refresh).toEqual({ ok: true }); // its notices came before it (docs/protocol.md §8)
    for (const [i, id] of ids.entries()) {
      const notices = c.unsubscribed.items.filter((n) => n.id === id).length;
      const ok = acks[i]!.ok ? 1 : 0;
      if (!acks[i]!.ok) expect(acks[i]).toMatchObject({ ok: false, error: { code: 'unknown_subscription' } });
      expect(ok + notices, `${id}: unsubscribe ${JSON.stringify(acks[i])}, ${notices} notice(s)`).toBe(1);
    }
  });

  it('a refresh for another subject racing subscribes is refused with unauthorized and changes nothing', async () => {
    const c = await h.client(token({ sub: uniqueName('alice'), topics: ['za.#'] }));
    const pending = Array.from({ length: 20 }, (_, i) => c.subscribe(`za.${i}`));
    const refused = await c.emitWithAck('refresh', { token: token({ sub: uniqueName('mallory'), topics: ['#'] }) });
    expect(refused).toMatchObject({ ok: false, error: { code: 'unauthorized' } });
    expect((await Promise.all(pending)).every((a) => a.ok)).toBe(true);
    expect(await c.subscribe('zz.1')).toMatchObject({ ok: false, error: { code: 'forbidden' } });
  });
});

describe('expiry and reconnect races', () => {
  it('a token expiring during a subscribe flood: the socket is disconnected and none of its queues survive', async () => {
    const c = await h.client(token({ topics: ['exp.#'], ttl: 2 }));
    let i = 0;
    const disconnected = new Promise<string>((resolve) => c.socket.once('disconnect', resolve));
    let done = false;
    void disconnected.then(() => (done = true));
    const flood = (async () => {
      while (!done) {
        c.socket.emit('subscribe', { pattern: `exp.${i++}` }, () => undefined);
        await sleep(2); // pacing: a flood spread over the token's last moments, not a wait for anything
      }
    })();
    // Time is what is under test here: the token's exp must pass, and the deadline bounds how late the gateway may act on it.
    expect(await Promise.race([disconnected, sleep(6_000).then(() => 'still connected 6 s after a 2 s token')])).toBe('io server disconnect');
    await flood;
    expect(i).toBeGreaterThan(10);
    await eventually(async () => (await h.extraQueues()).length === 0, 'no queue survives the expired socket', 20_000);
  });

  it('a reconnecting socket reuses nothing: old ids are unknown, old queues are gone, nothing is delivered to them', async () => {
    const t = token({ topics: ['re.#'] });
    const socket = h.track(io(h.url, { auth: { token: t }, transports: ['websocket'], reconnection: true, reconnectionDelay: 50, forceNew: true }));
    const c = new TestClient(socket);
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    const firstSid = socket.id;
    const oldIds = await Promise.all(Array.from({ length: 5 }, (_, i) => c.mustSubscribe(`re.${i}`)));
    const reconnected = new Promise((resolve) => socket.io.once('reconnect', resolve));
    socket.io.engine.close(); // transport drops; the manager reconnects on its own
    await reconnected;
    await new Promise<void>((resolve) => (socket.connected ? resolve() : socket.once('connect', () => resolve())));
    expect(socket.id).not.toBe(firstSid);
    expect(socket.recovered, 'no connection-state recovery: the server must not revive subscriptions').toBeFalsy();
    await eventually(async () => (await h.extraQueues()).length === 0, 'the first connection\'s queues are deleted', 20_000);
    for (const id of oldIds) expect(await c.unsubscribe(id)).toMatchObject({ ok: false, error: { code: 'unknown_subscription' } });
    const newId = await c.mustSubscribe('re.#');
    expect(oldIds).not.toContain(newId);
    await h.publish('re.0', { after: 'reconnect' });
    await c.messages.waitFor((m: Delivery) => m.id === newId && m.body.after === 'reconnect');
    expect(c.messages.items.filter((m) => m.body.after === 'reconnect' && oldIds.includes(m.id))).toEqual([]);
    // seq restarts at 1 for the new subscription.
    expect(c.deliveriesFor(newId)[0]!.seq).toBe(1);
  });

  it('the same pattern subscribed 50 times at once: 50 distinct ids, each delivered exactly once with seq 1', async () => {
    const c = await h.client(token({ topics: ['same.#'] }));
    const acks = await Promise.all(Array.from({ length: 50 }, () => c.subscribe('same.x')));
    const ids = okIds(acks);
    expect(ids).toHaveLength(50);
    expect(new Set(ids).size).toBe(50);
    expect(await h.extraQueues()).toHaveLength(50);
    await h.publish('same.x', { once: true });
    // A fence behind it on every subscription: once all 50 arrive, any extra copy would have arrived before.
    await h.publish('same.x', { fence: true });
    await eventually(async () => c.messages.items.filter((m) => m.body.fence).length === 50, 'the fence on every subscription');
    const once = c.messages.items.filter((m) => m.body.once);
    expect(once).toHaveLength(50);
    expect(new Set(once.map((m) => m.id))).toEqual(new Set(ids));
    expect(once.every((m) => m.seq === 1)).toBe(true);
  });
});

describe('per-subject connection limit races', () => {
  let limited: Harness;
  beforeAll(async () => {
    limited = await Harness.start(
      { jwt: { secret: SECRET, algorithms: ['HS256'] }, maxConnectionsPerSubject: 3 },
      { bystanderToken: token({ sub: 'bystander', topics: ['bystander.#'] }) },
    );
  });
  afterEach(async () => {
    await limited.verifyHealthy();
  }, 90_000);
  afterAll(() => limited.bystander.close());

  async function attempt(t: string): Promise<import('socket.io-client').Socket | { code?: string; message?: string }> {
    return rawConnect(limited.url, { auth: { token: t } }).then(
      (s) => limited.track(s),
      (err: Error & { data?: { code?: string; message?: string } }) => err.data ?? { message: err.message },
    );
  }

  it('50 simultaneous handshakes for one subject with a limit of 3: exactly 3 connect, the rest get limit_exceeded, and slots free up again', async () => {
    const t = token({ sub: uniqueName('crowd'), topics: ['crowd.#'] });
    const results = await Promise.all(Array.from({ length: 50 }, () => attempt(t)));
    const connected = results.filter((r): r is import('socket.io-client').Socket => 'emit' in r);
    const refused = results.filter((r) => !('emit' in r)) as Array<{ code?: string }>;
    expect(connected.length, JSON.stringify(refused.slice(0, 3))).toBe(3);
    expect(refused.every((r) => r.code === 'limit_exceeded'), JSON.stringify(refused.find((r) => r.code !== 'limit_exceeded'))).toBe(true);
    for (const s of connected) s.close();
    // All three slots come back (refused handshakes did not take any).
    await eventually(async () => {
      const again = await Promise.all(Array.from({ length: 3 }, () => attempt(t)));
      const ok = again.filter((r) => 'emit' in r) as Array<import('socket.io-client').Socket>;
      for (const s of ok) s.close();
      return ok.length === 3;
    }, 'three slots free again', 10_000);
  });

  it('handshakes for one subject interleaved with disconnects never exceed the limit nor lose a slot', async () => {
    const t = token({ sub: uniqueName('churner'), topics: ['churn.#'] });
    for (let round = 0; round < 10; round++) {
      const results = await Promise.all(Array.from({ length: 6 }, () => attempt(t)));
      const connected = results.filter((r) => 'emit' in r) as Array<import('socket.io-client').Socket>;
      expect(connected.length, `round ${round}`).toBeLessThanOrEqual(3);
      for (const s of connected) s.disconnect();
      await sleep(50); // pacing between rounds, so handshakes interleave with the server handling disconnects; nothing is awaited
    }
    await eventually(async () => {
      const again = await Promise.all(Array.from({ length: 3 }, () => attempt(t)));
      const ok = again.filter((r) => 'emit' in r) as Array<import('socket.io-client').Socket>;
      for (const s of ok) s.close();
      return ok.length === 3;
    }, 'all three slots free after the churn', 10_000);
  });
});

