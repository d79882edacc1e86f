/**
 * Oversized and pathological client events (docs/protocol.md §9, size of one
 * packet from the client): a client that sends more than the configured payload
 * size is dropped (or its event refused), loses its subscriptions' queues,
 * and every other client keeps being served.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { stopTestGateways } from '../support/gateway.js';
import { eventually } from '../support/kit.js';
import { ackOf, assertWellFormed, disconnectWithin, Harness, rawConnect, waitForBroker } from './harness.js';

const LIMIT = 16 * 1024;
const MB = 1024 * 1024;

let h: Harness;

beforeAll(async () => {
  await waitForBroker();
  h = await Harness.start({ maxPayloadBytes: LIMIT });
});
afterEach(async () => {
  await h.verifyHealthy();
}, 90_000);
afterAll(async () => {
  h.bystander.close();
  await stopTestGateways();
});

/**
 * Emits an oversized event from a client holding a live subscription and
 * asserts the contract: that socket is dropped (or the event refused with
 * bad_request), and another client's subscription keeps delivering.
 */
async function offend(transports: string[], emit: (socket: import('socket.io-client').Socket) => Promise<unknown> | void): Promise<string> {
  const other = await h.client();
  const otherId = await other.mustSubscribe('other.#');
  const socket = h.track(await rawConnect(h.url, { transports }));
  const ack = await socket.timeout(5_000).emitWithAck('subscribe', { pattern: 'offender.#' });
  expect(ack).toMatchObject({ ok: true });
  const dropped = disconnectWithin(socket, 10_000);
  const reply = Promise.resolve(emit(socket)).catch((err: Error) => `no ack: ${err.message}`);
  const reason = await dropped;
  let outcome: string;
  if (reason === null) {
    // Not dropped: then the event must have been refused, never served.
    const r = await reply;
    expect(r, 'an oversized event that does not drop the socket must be refused with bad_request').toMatchObject({ ok: false, error: { code: 'bad_request' } });
    outcome = `refused: ${JSON.stringify(r)}`;
  } else {
    outcome = `dropped: ${reason}`;
  }
  // The other client is served throughout.
  await h.publish('other.1', { after: outcome });
  await other.messages.waitFor((m) => m.id === otherId && m.body.after === outcome);
  return outcome;
}

describe('oversized client events', () => {
  it('a 1 MB subscribe payload drops the offending socket (websocket); everyone else is served', async () => {
    await offend(['websocket'], (s) => s.timeout(5_000).emitWithAck('subscribe', { pattern: 'big.#', pad: 'x'.repeat(MB) }));
  });

  it('a 1 MB subscribe payload drops the offending socket (HTTP long-polling)', async () => {
    await offend(['polling'], (s) => s.timeout(5_000).emitWithAck('subscribe', { pattern: 'big.#', pad: 'x'.repeat(MB) }));
  });

  it('a 1 MB pattern string drops the offending socket', async () => {
    await offend(['websocket'], (s) => s.timeout(5_000).emitWithAck('subscribe', { pattern: `a.${'b'.repeat(MB)}` }));
  });

  it('a 1 MB unknown event with an ack drops the offending socket', async () => {
    await offend(['websocket'], (s) => s.timeout(5_000).emitWithAck('whatever', 'x'.repeat(MB)));
  });

  it('a 1 MB unknown event without an ack drops the offending socket', async () => {
    await offend(['websocket'], (s) => void s.emit('whatever', { blob: 'x'.repeat(MB) }));
  });

  it('a 1 MB event name drops the offending socket', async () => {
    await offend(['websocket'], (s) => s.timeout(5_000).emitWithAck('e'.repeat(MB), 1));
  });

  it('a 1 MB refresh token drops the offending socket', async () => {
    await offend(['websocket'], (s) => s.timeout(5_000).emitWithAck('refresh', { token: 't'.repeat(MB) }));
  });

  it('a 1 MB binary attachment drops the offending socket', async () => {
    await offend(['websocket'], (s) => s.timeout(5_000).emitWithAck('subscribe', { pattern: 'bin.#', blob: Buffer.alloc(MB, 7) }));
  });

  it('an event split into 100 binary attachments of 15 KB (1.5 MB in all) is over the payload limit too', async () => {
    const parts = Array.from({ length: 100 }, (_, i) => Buffer.alloc(15 * 1024, i));
    await offend(['websocket'], (s) => s.timeout(5_000).emitWithAck('subscribe', { pattern: 'bin.#', parts }));
  });

  it('twenty sockets sending 1 MB at once are all dropped; the gateway keeps serving', async () => {
    const offenders = await Promise.all(Array.from({ length: 20 }, async () => h.track(await rawConnect(h.url))));
    const drops = offenders.map((s) => disconnectWithin(s, 15_000));
    for (const s of offenders) s.emit('subscribe', { pattern: 'big.#', pad: 'y'.repeat(MB) }, () => undefined);
    const reasons = await Promise.all(drops);
    expect(reasons.filter((r) => r === null), 'every offender is dropped').toEqual([]);
    const c = await h.client();
    expect(await c.subscribe('after.flood')).toMatchObject({ ok: true });
  });
});

describe('events inside the payload limit', () => {
  it('a subscribe payload just under the limit (unknown padding key) is served normally', async () => {
    const c = await h.client();
    const ack = await c.emitWithAck('subscribe', { pattern: 'padded.#', pad: 'x'.repeat(LIMIT - 1024) });
    expect(ack).toEqual({ ok: true, id: expect.any(String) });
    await h.publish('padded.1', { n: 1 });
    await c.messages.waitFor((m) => m.id === ack.id);
  });

  it('a payload just over the limit drops the socket', async () => {
    await offend(['websocket'], (s) => s.timeout(5_000).emitWithAck('subscribe', { pattern: 'padded.#', pad: 'x'.repeat(LIMIT + 1024) }));
  });

  const arrays = (n: number) => `${'['.repeat(n)}1${']'.repeat(n)}`;
  const objects = (n: number) => `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`;
  it.each([
    ['subscribe', (deep: string) => `{"pattern":${deep}}`],
    ['subscribe', (deep: string) => deep],
    ['unsubscribe', (deep: string) => `{"id":${deep}}`],
    ['refresh', (deep: string) => `{"token":${deep}}`],
    ['no-such-event', (deep: string) => deep],
  ])('%s with a deeply nested payload (thousands of levels, under the size limit) gets a well-formed error ack', async (event, wrap) => {
    const raw = await h.raw();
    let ackId = 0;
    for (const deep of [arrays(7000), objects(2500)]) {
      const args = wrap(deep);
      expect(args.length).toBeLessThan(LIMIT - 100);
      const reply = await raw.emitRaw(++ackId, event, args);
      expect(reply, `${event} ${args.slice(0, 40)}…`).toHaveLength(1);
      const ack = assertWellFormed(reply[0], 'plain', `${event} ${args.slice(0, 40)}…`);
      expect(ack.ok).toBe(false);
    }
    expect(raw.closed).toBe(false);
  });

  it('an object with 1000 keys (under the size limit) as subscribe payload gets a well-formed ack', async () => {
    const c = await h.client();
    const payload: Record<string, number> = { pattern: 'wide.#' } as never;
    for (let i = 0; i < 1000; i++) payload[`k${i}`] = i;
    const ack = assertWellFormed(await ackOf(c.socket, 'subscribe', [payload]), 'id', 'wide payload');
    if (ack.ok) expect(await c.unsubscribe(ack.id)).toEqual({ ok: true });
  });
});

describe('malformed socket.io frames (from a hand-rolled client)', () => {
  it.each([
    ['an event packet without data', '42'],
    ['an event with an empty array', '42[]'],
    ['a numeric event name', '42[42,{"pattern":"a"}]'],
    ['an object instead of an array', '42{"0":"subscribe"}'],
    ['truncated JSON', '42["subscribe",{"pattern":"a"'],
    ['an ack from the client for an unknown id', '43999[{"ok":true}]'],
    ['an unknown packet type', '49["subscribe"]'],
    ['a bare message type', '4'],
    ['another namespace', '42/nope,["subscribe",{"pattern":"a"}]'],
    ['a placeholder in a non-binary packet', '427["subscribe",{"pattern":{"_placeholder":true,"num":0}}]'],
    ['a binary event announcing a million attachments that never come', '451000000-["subscribe",{"_placeholder":true,"num":999999}]'],
    ['a negative attachment count', '45-1-["subscribe",{"_placeholder":true,"num":0}]'],
    ['a binary frame without a header', Buffer.from([1, 2, 3, 4])],
  ])('%s neither crashes the gateway nor leaks (the socket may be dropped)', async (_, frame) => {
    const raw = await h.raw();
    const ack = await raw.emitRaw(1, 'subscribe', '{"pattern":"raw.before"}');
    expect(ack[0]).toMatchObject({ ok: true });
    raw.send(frame);
    // Either the connection is closed, or it still answers. No wait: the transport is ordered, so the gateway has
    // handled the frame before the subscribe below, whose ack (or the connection closing instead) says what it did.
    if (!raw.closed) {
      const after = await raw.emitRaw(2, 'subscribe', '{"pattern":"raw.after"}').catch((err: Error) => err);
      if (!(after instanceof Error)) expect(after[0]).toMatchObject({ ok: true });
      else expect(raw.closed, `no ack and not closed: ${after.message}`).toBe(true);
    }
  });

  it('joining the namespace twice on one transport, subscribing, then vanishing leaves no queue', async () => {
    const raw = await h.raw();
    expect((await raw.emitRaw(1, 'subscribe', '{"pattern":"twice.1"}'))[0]).toMatchObject({ ok: true });
    raw.send('40');
    // The transport is ordered: the second subscribe is handled after the second join, however that went.
    if (!raw.closed) {
      const second = await raw.emitRaw(2, 'subscribe', '{"pattern":"twice.2"}').catch(() => null);
      if (second) expect(assertWellFormed(second[0], 'id', 'second subscribe').ok).toBe(true);
    }
    // verifyHealthy (afterEach) closes the transport and checks that both queues are gone.
  });

  it('leaving the namespace (41) while subscribed deletes the queues even though the transport stays open', async () => {
    const raw = await h.raw();
    const [ack] = (await raw.emitRaw(1, 'subscribe', '{"pattern":"left.1"}')) as [{ ok: boolean; id: string }];
    expect(ack.ok).toBe(true);
    raw.send('41');
    await eventually(async () => (await h.extraQueues()).length === 0, 'queue deleted after the client left the namespace');
    expect(raw.closed).toBe(false);
  });
});
