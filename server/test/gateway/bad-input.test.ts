/**
 * Clients make mistakes and some are hostile: each bad request gets a clear
 * error (or is dropped with a log line), loses nothing, and the gateway keeps
 * serving everyone else.
 */
import { listQueues } from '../support/broker.js';
import { connectClient, describe, expect, test, type TestClient } from '../support/kit.js';

/** A well-behaved client subscribed to `bystander.#` for the whole file. */
const it = test.extend('bystander', { scope: 'file', auto: true }, async ({ gateway }, { onCleanup }): Promise<{ client: TestClient; id: string }> => {
  const client = await connectClient(gateway.url);
  onCleanup(() => client.close());
  return { client, id: await client.mustSubscribe('bystander.#') };
});
it.override({ gatewayConfig: { maxSubscriptions: 5 } });

// After every kind of abuse, a well-behaved client is still served.
it.afterEach(async ({ gateway, bystander }) => {
  const n = bystander.client.messages.items.length;
  await gateway.mq.produce('bystander.ping', { n });
  await bystander.client.messages.waitFor((m) => m.id === bystander.id && m.body.n === n);
});

describe('invalid patterns are refused with invalid_pattern before reaching the broker', () => {
  const cases: Array<[string, unknown, RegExp]> = [
    ['an empty word', 'a..b', /empty word/],
    ['a wildcard inside a word', 'a.b*', /invalid word "b\*"/],
    ['an empty string', '', /must not be empty/],
    ['300 bytes', 'a'.repeat(300), /at most 255 bytes/],
    ['a trailing dot', 'builds.', /empty word/],
    ['a space', 'builds 1', /invalid word/],
  ];
  it.for(cases)('%s', async ([, pattern, message], { gateway, client: c }) => {
    const ack = await c.subscribe(pattern);
    expect(ack).toEqual({ ok: false, error: { code: 'invalid_pattern', message: expect.stringMatching(message) } });
    expect(await listQueues(gateway.queuePrefix)).toHaveLength(1); // only the bystander's
  });
});

describe('malformed payloads', () => {
  it.for([
    ['a bare string', 'builds.#'],
    ['null', null],
    ['an array', ['builds.#']],
    ['a number', 7],
  ] as const)('subscribe with %s gets bad_request', async ([, payload], { client: c }) => {
    expect(await c.emitWithAck('subscribe', payload)).toEqual({
      ok: false,
      error: { code: 'bad_request', message: expect.stringContaining('{ pattern: string }') },
    });
  });

  // A pattern field that is missing or not a string is a malformed payload (docs/protocol.md §4.1), not a bad pattern.
  it.for([
    ['{}', {}, /"pattern" is missing/],
    ['a misspelt key { patern }', { patern: 'builds.#' }, /"pattern" is missing/],
    ['a number as the pattern', { pattern: 42 }, /"pattern" must be a string, got a number/],
    ['null as the pattern', { pattern: null }, /"pattern" must be a string, got null/],
    ['an array as the pattern', { pattern: ['builds.#'] }, /"pattern" must be a string, got an array/],
  ] as const)('subscribe with %s gets bad_request, not invalid_pattern', async ([, payload, detail], { gateway, client: c }) => {
    const ack = await c.emitWithAck('subscribe', payload);
    expect(ack).toEqual({ ok: false, error: { code: 'bad_request', message: expect.stringContaining('{ pattern: string }') } });
    expect(ack.error.message).toMatch(detail);
    expect(await listQueues(gateway.queuePrefix)).toHaveLength(1); // only the bystander's
  });

  it('unsubscribe without an id gets bad_request; an unknown id gets unknown_subscription', async ({ client: c }) => {
    expect(await c.emitWithAck('unsubscribe', { nope: 1 })).toMatchObject({ ok: false, error: { code: 'bad_request' } });
    expect(await c.unsubscribe('s-never')).toMatchObject({ ok: false, error: { code: 'unknown_subscription' } });
  });

  it('cannot unsubscribe another socket\'s subscription', async ({ bystander, client: c }) => {
    expect(await c.unsubscribe(bystander.id)).toMatchObject({ ok: false, error: { code: 'unknown_subscription' } });
  });

  it('an unknown event with a callback gets bad_request naming the protocol\'s events', async ({ client: c }) => {
    expect(await c.emitWithAck('subscribe_all', { pattern: '#' })).toEqual({
      ok: false,
      error: { code: 'bad_request', message: 'unknown event "subscribe_all"; protocol v1 has subscribe, unsubscribe, refresh, received' },
    });
  });

  it('events without a callback are ignored and the socket stays usable', async ({ gateway, client: c }) => {
    c.socket.emit('subscribe', { pattern: 'no.ack' });
    c.socket.emit('whatever', 1, 2, 3);
    const id = await c.mustSubscribe('still.works');
    await gateway.mq.produce('still.works', {});
    await c.messages.waitFor((m) => m.id === id);
    expect(await listQueues(gateway.queuePrefix)).toHaveLength(2);
  });

  it('more subscriptions than the limit get limit_exceeded', async ({ client: c }) => {
    for (let i = 0; i < 5; i++) await c.mustSubscribe(`limit.${i}`);
    expect(await c.subscribe('limit.6')).toEqual({
      ok: false,
      error: { code: 'limit_exceeded', message: 'at most 5 subscriptions per connection; unsubscribe from one first' },
    });
  });
});
