/**
 * Property-based fuzzing through a live socket against `topicgate serve` in a
 * child process on the real RabbitMQ (a crash shows up as an exited process,
 * not as a dead test runner). For any pattern, any subscribe/unsubscribe
 * payload, any event name with any arguments: every ack is well-formed and
 * consistent with docs/protocol.md §3, §4, §5, §10, the gateway stays up, and
 * once every success is unsubscribed the gateway holds no queue but the
 * bystander's.
 */
import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { deleteGatewayExchanges, eventually, listQueues } from '../support/broker.js';
import { spawnGateway, type ChildGateway } from '../support/child-gateway.js';
import {
  ackOf,
  assertChildAlive,
  assertWellFormed,
  connect,
  containedBruteForce,
  Harness,
  isValidPattern,
  publishTo,
  SECRET,
  token,
  waitForBroker,
} from './harness.js';

const RUNS = Number(process.env.HOSTILE_FUZZ_RUNS ?? 250);
const SEED = process.env.HOSTILE_FUZZ_SEED === undefined ? undefined : Number(process.env.HOSTILE_FUZZ_SEED);
const fcOptions = { numRuns: RUNS, ...(SEED !== undefined && { seed: SEED }), endOnFailure: true };

/** Events socket.io itself reserves: a client library refuses to emit them. */
const RESERVED = new Set(['connect', 'connect_error', 'disconnect', 'disconnecting', 'newListener', 'removeListener']);
const PROTOCOL_EVENTS = new Set(['subscribe', 'unsubscribe', 'refresh']);
const PROTOTYPE_NAMES = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', '__defineGetter__', 'prototype', 'then'];

let child: ChildGateway;
let h: Harness;

beforeAll(async () => {
  await waitForBroker();
  child = await spawnGateway({
    TOPICGATE_INSECURE_NO_AUTH: '',
    TOPICGATE_JWT_SECRET: SECRET,
    TOPICGATE_MAX_SUBSCRIPTIONS: '100000',
    TOPICGATE_SUBSCRIBE_RATE: '1000000',
    TOPICGATE_LOG_LEVEL: 'warn',
  });
  h = await Harness.around(
    { url: child.url, queuePrefix: child.queuePrefix, connectionName: child.connectionName, publish: (key, body) => publishTo(child.exchange, key, body) },
    { bystanderToken: token({ sub: 'bystander', topics: ['bystander.#'] }) },
  );
}, 60_000);
afterEach(async () => {
  await assertChildAlive(child);
  await h.verifyHealthy();
  await assertChildAlive(child);
}, 90_000);
afterAll(async () => {
  h?.bystander.close();
  child?.process.kill('SIGTERM');
  await child?.exited;
  if (child) await deleteGatewayExchanges(child.exchange);
});

// ---------------------------------------------------------------- arbitraries

const word = fc.stringMatching(/^[A-Za-z0-9_:-]{1,10}$/);
const validPattern = fc
  .array(fc.oneof({ weight: 4, arbitrary: word }, { weight: 1, arbitrary: fc.constant('*') }, { weight: 1, arbitrary: fc.constant('#') }), { minLength: 1, maxLength: 8 })
  .map((ws) => ws.join('.'));
const poison = fc.constantFrom('.', '..', ' ', '\u0000', '*x', 'x#', '##', '**', 'é', '/', '\t', '\n', '$', '%', '\u200b', '🔑', '\\', '"', '+', '>', 'x.');
const nearlyValid = fc.tuple(validPattern, poison, fc.nat()).map(([p, bad, at]) => {
  const i = at % (p.length + 1);
  return p.slice(0, i) + bad + p.slice(i);
});
/** Around the 255-byte limit, with ASCII and multi-byte words. */
const nearLimit = fc.tuple(fc.integer({ min: 240, max: 270 }), fc.constantFrom('a', 'a.', 'é', 'a.*.')).map(([n, unit]) => unit.repeat(n).slice(0, n).replace(/\.$/, 'b'));
const anyPattern = fc.oneof(
  validPattern,
  nearlyValid,
  nearLimit,
  fc.string(),
  fc.string({ unit: 'grapheme' }),
  fc.string({ unit: 'binary' }),
  fc.stringMatching(/^[A-Za-z0-9_:.*# -]{0,24}$/),
  fc.constantFrom('', '.', '#', '*', '#.#', '*.#.*', 'a..b', '.a', 'a.', '# ', ' #', ...PROTOTYPE_NAMES),
);
/** Any JSON value. (Binary attachments get their own test below: they found a wrong code that would mask everything else.) */
const json = fc.jsonValue({ maxDepth: 3 });
/** JSON or a binary attachment, for the any-event property (which only checks well-formedness for them). */
const jsonish = fc.oneof({ weight: 4, arbitrary: json }, { weight: 1, arbitrary: fc.uint8Array({ maxLength: 32 }) });

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);

/** Subscribes and checks the ack against the contract; returns the id of a success. */
async function checkedSubscribe(socket: import('socket.io-client').Socket, payload: unknown): Promise<string | null> {
  const ack = assertWellFormed(await ackOf(socket, 'subscribe', [payload]), 'id', `subscribe ${JSON.stringify(payload)?.slice(0, 200)}`);
  const where = `subscribe ${JSON.stringify(payload)?.slice(0, 200)} → ${JSON.stringify(ack).slice(0, 300)}`;
  if (!isPlainObject(payload)) {
    expect(ack, where).toMatchObject({ ok: false, error: { code: 'bad_request' } });
  } else if (typeof payload.pattern === 'string') {
    if (isValidPattern(payload.pattern) && hashRuns(payload.pattern) <= 2) expect(ack.ok, where).toBe(true);
    else expect(ack, where).toMatchObject({ ok: false, error: { code: 'invalid_pattern' } });
  } else {
    // A pattern field that is missing or not a string is a malformed payload (docs/protocol.md §4.1).
    expect(ack, where).toMatchObject({ ok: false, error: { code: 'bad_request' } });
  }
  return ack.ok ? ack.id! : null;
}

/** Runs of adjacent wildcard words holding a `#`: the `#` words the pattern keeps once canonical (at most 2 are allowed). */
function hashRuns(pattern: string): number {
  let runs = 0;
  let inRunWithHash = false;
  let inRun = false;
  for (const word of pattern.split('.')) {
    const wildcard = word === '*' || word === '#';
    if (!wildcard) {
      if (inRunWithHash) runs++;
      inRun = inRunWithHash = false;
      continue;
    }
    inRun = true;
    if (word === '#') inRunWithHash = true;
  }
  return runs + (inRun && inRunWithHash ? 1 : 0);
}

async function unsubscribeAll(socket: import('socket.io-client').Socket, ids: readonly string[]): Promise<void> {
  for (const id of ids) expect(await ackOf(socket, 'unsubscribe', [{ id }]), `unsubscribe ${id}`).toEqual({ ok: true });
  await eventually(async () => (await listQueues(h.gateway.queuePrefix)).length === 1, 'every fuzzed subscription\'s queue is deleted');
}

// ---------------------------------------------------------------- properties

describe('fuzzing the wire protocol', () => {
  it(`any string as a pattern: valid patterns are subscribed, invalid ones get invalid_pattern (${RUNS} runs)`, async () => {
    const c = await h.client(token({ topics: ['#'] }));
    const ids: string[] = [];
    await fc.assert(
      fc.asyncProperty(anyPattern, async (pattern) => {
        const id = await checkedSubscribe(c.socket, { pattern });
        if (id !== null) {
          expect(ids, 'subscription ids are unique').not.toContain(id);
          ids.push(id);
        }
      }),
      fcOptions,
    );
    expect(ids.length, 'the generator produced some valid patterns').toBeGreaterThan(10);
    expect((await listQueues(h.gateway.queuePrefix)).length, 'one queue per successful subscribe').toBe(ids.length + 1);
    await unsubscribeAll(c.socket, ids);
  });

  it(`any JSON value as the subscribe payload gets a well-formed, consistent ack (${RUNS} runs)`, async () => {
    const c = await h.client(token({ topics: ['#'] }));
    const ids: string[] = [];
    const payload = fc.oneof(
      json,
      fc.record({ pattern: anyPattern }),
      fc.tuple(fc.record({ pattern: validPattern }), fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 })).map(([p, extra]) => ({ ...extra, ...p })),
      fc.record({ pattern: json }),
      fc.dictionary(fc.constantFrom('pattern', 'Pattern', 'id', 'token', ...PROTOTYPE_NAMES), json, { maxKeys: 3 }),
    );
    await fc.assert(
      fc.asyncProperty(payload, async (p) => {
        const id = await checkedSubscribe(c.socket, p);
        if (id !== null) ids.push(id);
      }),
      fcOptions,
    );
    expect(new Set(ids).size).toBe(ids.length);
    await unsubscribeAll(c.socket, ids);
  });

  it(`any JSON as the unsubscribe payload: only a live id of this socket succeeds, once (${RUNS} runs)`, async () => {
    const c = await h.client(token({ topics: ['#'] }));
    const other = await h.client(token({ topics: ['#'] }));
    const live = new Set<string>();
    for (let i = 0; i < 20; i++) live.add(await c.mustSubscribe(`fuzz.unsub.${i}`));
    const foreign = await other.mustSubscribe('fuzz.foreign');
    const known = [...live, foreign];
    const payload = fc.oneof(
      json,
      fc.record({ id: json }),
      fc.record({ id: fc.string() }),
      fc.record({ id: fc.constantFrom(...known) }),
      fc.record({ id: fc.constantFrom(...known).map((id) => ` ${id}`) }),
      fc.record({ id: fc.constantFrom(...known).map((id) => id.toUpperCase()) }),
      fc.record({ id: fc.constantFrom(...PROTOTYPE_NAMES) }),
      fc.record({ id: fc.constantFrom(...known).map((id) => [id]) }),
    );
    await fc.assert(
      fc.asyncProperty(payload, async (p) => {
        const ack = assertWellFormed(await ackOf(c.socket, 'unsubscribe', [p]), 'plain', `unsubscribe ${JSON.stringify(p)}`);
        const where = `unsubscribe ${JSON.stringify(p)?.slice(0, 200)} → ${JSON.stringify(ack)}`;
        if (!isPlainObject(p)) {
          expect(ack, where).toMatchObject({ ok: false, error: { code: 'bad_request' } });
        } else if (typeof p.id === 'string') {
          if (live.has(p.id)) {
            expect(ack, where).toEqual({ ok: true });
            live.delete(p.id);
          } else {
            expect(ack, where).toMatchObject({ ok: false, error: { code: 'unknown_subscription' } });
          }
        } else {
          expect(ack.ok, where).toBe(false);
          expect(['bad_request', 'unknown_subscription'], where).toContain(!ack.ok && ack.error.code);
        }
      }),
      fcOptions,
    );
    // The other socket's subscription survived every attempt.
    await h.publish('fuzz.foreign', { still: 'here' });
    await other.messages.waitFor((m) => m.id === foreign && m.body.still === 'here');
    expect(await ackOf(other.socket, 'unsubscribe', [{ id: foreign }])).toEqual({ ok: true });
    await unsubscribeAll(c.socket, [...live]);
  });

  it(`any event name with any arguments (with and without an ack) gets a well-formed ack and never hurts the gateway (${RUNS} runs)`, async () => {
    const c = await h.client(token({ topics: ['#'] }));
    const ids: string[] = [];
    const eventName = fc
      .oneof(fc.string(), fc.string({ unit: 'grapheme' }), fc.constantFrom('subscribe', 'unsubscribe', 'refresh', 'messages', 'resync', 'unsubscribed', 'error', 'ping', 'SUBSCRIBE', ' subscribe', ...PROTOTYPE_NAMES))
      .filter((name) => !RESERVED.has(name));
    // Exactly one argument: zero or several arguments before the ack have their own tests below (they found a bug).
    const args = fc.tuple(fc.oneof(jsonish, fc.record({ pattern: anyPattern }), fc.record({ token: fc.string() })));
    await fc.assert(
      fc.asyncProperty(eventName, args, fc.boolean(), async (name, as, withAck) => {
        if (!withAck) {
          c.socket.emit(name, ...as);
          return;
        }
        const raw = await ackOf(c.socket, name, as);
        const ack = assertWellFormed(raw, name === 'subscribe' ? 'id' : 'plain', `${JSON.stringify(name)} ${JSON.stringify(as)}`);
        const where = `${JSON.stringify(name)} ${JSON.stringify(as)?.slice(0, 200)} → ${JSON.stringify(ack)}`;
        if (!PROTOCOL_EVENTS.has(name)) {
          expect(ack, where).toMatchObject({ ok: false, error: { code: 'bad_request' } });
        } else if (name === 'subscribe') {
          const p: unknown = as[0];
          if (ack.ok) {
            expect(isPlainObject(p) && isValidPattern(p.pattern), where).toBe(true);
            ids.push(ack.id!);
          }
        } else if (name === 'unsubscribe') {
          expect(ack.ok, `${where}: no id here is live`).toBe(false);
        } else {
          expect(ack, `${where}: no generated token is valid`).toMatchObject({ ok: false, error: { code: expect.stringMatching(/^(unauthorized|bad_request)$/) } });
        }
        expect(c.socket.connected, where).toBe(true);
      }),
      fcOptions,
    );
    // Events without an ack left the socket usable; it is still served.
    const id = await c.mustSubscribe('fuzz.after.events');
    await h.publish('fuzz.after.events', { n: 1 });
    await c.messages.waitFor((m) => m.id === id);
    await unsubscribeAll(c.socket, [...ids, id]);
  });

  /** Emits each case, waits up to 3 s for its ack, and notes whether a queue appeared for it. */
  async function outcomes(cases: Array<[string, unknown[]]>): Promise<string[]> {
    const c = await h.client(token({ topics: ['#'] }));
    const lines: string[] = [];
    for (const [name, args] of cases) {
      const before = (await listQueues(h.gateway.queuePrefix)).length;
      const ack = await c.socket.timeout(3_000).emitWithAck(name, ...args).catch(() => 'NO ACK');
      const queues = (await listQueues(h.gateway.queuePrefix)).length - before;
      lines.push(`${name} ${JSON.stringify(args)} → ${JSON.stringify(ack)}${queues ? ` (+${queues} queue)` : ''}`);
      if (typeof ack === 'object' && ack?.ok && ack.id) await c.unsubscribe(ack.id);
    }
    return lines;
  }

  it('a protocol event with extra arguments before the ack still gets a well-formed ack (and no unacknowledged queue)', async () => {
    const lines = await outcomes([
      ['subscribe', [{ pattern: 'extra.args' }, 'surplus']],
      ['subscribe', [{ pattern: 'extra.args' }, { pattern: 'second' }, 3]],
      ['unsubscribe', [{ id: 'nope' }, 'surplus']],
      ['refresh', [{ token: 'garbage' }, null]],
      ['not-an-event', [1, 2]],
    ]);
    expect(lines.filter((l) => l.includes('NO ACK') || l.includes('queue)')), lines.join('\n')).toEqual([]);
  });

  it('a binary (Buffer) payload is malformed: subscribe, unsubscribe and refresh answer bad_request', async () => {
    const lines = await outcomes(
      ['subscribe', 'unsubscribe', 'refresh'].flatMap((name) =>
        [new Uint8Array([1, 2, 3]), Buffer.from(JSON.stringify({ pattern: 'a.b', id: 'x', token: 'y' }))].map((payload) => [name, [payload]] as [string, unknown[]]),
      ),
    );
    expect(lines.filter((l) => !l.includes('"code":"bad_request"')), lines.join('\n')).toEqual([]);
  });

  it('a protocol event with no payload at all (only the ack) gets bad_request', async () => {
    const lines = await outcomes([
      ['subscribe', []],
      ['unsubscribe', []],
      ['refresh', []],
    ]);
    expect(lines.filter((l) => !l.includes('"code":"bad_request"')), lines.join('\n')).toEqual([]);
  });

  it(`containment: for random token topics and patterns, subscribe succeeds exactly when every key the pattern matches is allowed (${Math.min(RUNS, 200)} runs)`, async () => {
    const smallWord = fc.constantFrom('a', 'b', 'c', '*', '#');
    const smallPattern = fc.array(smallWord, { minLength: 1, maxLength: 4 }).map((ws) => ws.join('.'));
    let allowedSeen = 0;
    let forbiddenSeen = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(smallPattern, { minLength: 1, maxLength: 3 }), smallPattern, async (topics, pattern) => {
        const expected = containedBruteForce(pattern, topics, 8);
        // An all-`#` pattern also matches the empty key, which containment counts (docs/protocol.md §3, §10.3) and brute force does not enumerate.
        const matchesEmpty = pattern.split('.').every((w) => w === '#');
        const topicsMatchEmpty = topics.some((t) => t.split('.').every((w) => w === '#'));
        const c = await connect(h.gateway.url, token({ topics }));
        try {
          const ack = assertWellFormed(await ackOf(c.socket, 'subscribe', [{ pattern }]), 'id', `topics ${JSON.stringify(topics)} pattern ${pattern}`);
          const where = `topics ${JSON.stringify(topics)}, pattern ${pattern} → ${JSON.stringify(ack)}`;
          if (matchesEmpty && !topicsMatchEmpty && expected) {
            expect(ack.ok || ack.error.code === 'forbidden', where).toBe(true);
          } else if (expected) {
            expect(ack.ok, where).toBe(true);
          } else {
            expect(ack, where).toMatchObject({ ok: false, error: { code: 'forbidden' } });
          }
          if (ack.ok) {
            allowedSeen++;
            expect(await c.unsubscribe(ack.id!)).toEqual({ ok: true });
          } else forbiddenSeen++;
        } finally {
          c.close();
        }
      }),
      { ...fcOptions, numRuns: Math.min(RUNS, 200) },
    );
    expect(allowedSeen).toBeGreaterThan(5);
    expect(forbiddenSeen).toBeGreaterThan(5);
  });
});
