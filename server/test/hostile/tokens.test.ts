/**
 * Hostile tokens, at the handshake and on `refresh` (docs/protocol.md §2.1,
 * §4.3, §10): every token that is missing, malformed, expired, not yet valid,
 * for another issuer or audience, signed with another key or with an algorithm
 * not on the allow-list is refused with `connect_error`
 * `{ code: 'unauthorized' }` and a message that says why (never the secret).
 * Topics are authorized by containment, never by string prefix.
 */
import { generateKeyPairSync } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mintTestToken } from '../support/tokens.js';
import { uniqueName } from '../support/broker.js';
import { startTestGateway, stopTestGateways } from '../support/gateway.js';
import { b64url, connect, craftToken, expectRefused, Harness, now, SECRET, waitForBroker } from './harness.js';

const ISSUER = 'https://issuer.hostile.test';
const AUDIENCE = 'topicgate-hostile';

/** Claims the HS256 gateway accepts. */
function claims(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { sub: uniqueName('eve'), topics: ['#'], iss: ISSUER, aud: AUDIENCE, iat: now(), exp: now() + 3600, ...extra };
}
const HS256 = { alg: 'HS256', typ: 'JWT' };
const signed = (payload: unknown, header: unknown = HS256) => craftToken(header, payload, { alg: 'sha256', key: SECRET });
const valid = (opts: { sub?: string; topics?: string[]; ttl?: number } = {}) => mintTestToken(SECRET, { ...opts, issuer: ISSUER, audience: AUDIENCE });

let hs: Harness;

beforeAll(async () => {
  await waitForBroker();
  hs = await Harness.start(
    { jwt: { secret: SECRET, algorithms: ['HS256'], issuer: ISSUER, audience: AUDIENCE } },
    { bystanderToken: valid({ sub: 'bystander', topics: ['bystander.#'] }) },
  );
});
afterEach(async () => {
  await hs.verifyHealthy();
}, 90_000);
afterAll(async () => {
  hs.bystander.close();
  await stopTestGateways();
});

/** Asserts an `unauthorized` refusal whose message matches `why` and leaks nothing. */
function expectUnauthorized(refusal: { data: { code?: string; message?: string } | undefined; message: string }, why: RegExp): void {
  expect(refusal.data, `connect_error has data (got message "${refusal.message}")`).toBeDefined();
  expect(refusal.data!.code).toBe('unauthorized');
  expect(refusal.data!.message).toBeTypeOf('string');
  expect(refusal.data!.message).toMatch(why);
  expect(JSON.stringify(refusal.data)).not.toContain(SECRET);
  expect(refusal.message).not.toContain(SECRET);
}

describe('the handshake refuses every token it should not trust (HS256 secret, issuer and audience configured)', () => {
  const validClaims = claims();
  const cases: Array<[string, () => unknown, RegExp]> = [
    ['alg "none" with an empty signature', () => craftToken({ alg: 'none', typ: 'JWT' }, claims()), /algorithm|alg|none|signature|invalid/i],
    ['alg "None" (case games)', () => craftToken({ alg: 'None', typ: 'JWT' }, claims()), /algorithm|alg|none|signature|invalid/i],
    ['alg "NONE" with the real HMAC appended', () => craftToken({ alg: 'NONE' }, claims(), { alg: 'sha256', key: SECRET }), /algorithm|alg|none|signature|invalid/i],
    ['alg "none" with only two segments', () => craftToken({ alg: 'none' }, claims()).slice(0, -1), /malformed|invalid|jwt/i],
    ['HS512 signed with the right secret (not on the allow-list)', () => craftToken({ alg: 'HS512', typ: 'JWT' }, claims(), { alg: 'sha512', key: SECRET }), /algorithm|alg/i],
    ['HS384 signed with the right secret (not on the allow-list)', () => jwt.sign(claims(), SECRET, { algorithm: 'HS384' }), /algorithm|alg/i],
    ['HS256 header with the signature stripped', () => signed(claims()).replace(/[^.]+$/, ''), /signature|malformed|invalid/i],
    ['a tampered payload (topics widened) under the original signature', () => {
      const [h, , s] = signed({ ...validClaims, topics: ['bystander.1'] }).split('.');
      return `${h}.${b64url(JSON.stringify({ ...validClaims, topics: ['#'] }))}.${s}`;
    }, /signature|invalid/i],
    ['a token signed with another secret', () => jwt.sign(claims(), `${SECRET}-not`, { algorithm: 'HS256' }), /signature|invalid/i],
    ['an expired token', () => signed(claims({ exp: now() - 60 })), /expired/i],
    ['a token without exp (it would never expire)', () => signed(claims({ exp: undefined })), /exp/i],
    ['a token that expired a second ago', () => signed(claims({ exp: now() - 1 })), /expired/i],
    ['a token that practically never expires (exp 1e300)', () => signed(claims({ exp: 1e300 })), /too far in the future/i],
    ['a token that expires in a year (more than TOPICGATE_JWT_MAX_TTL, 24h)', () => signed(claims({ exp: now() + 365 * 86_400 })), /too far in the future/i],
    ['a token issued in the future (iat in an hour)', () => signed(claims({ iat: now() + 3600 })), /issued in the future/i],
    ['a token issued for two days, a day ago', () => signed(claims({ iat: now() - 86_400, exp: now() + 86_400 })), /lifetime/i],
    ['a token not yet valid (nbf in an hour)', () => signed(claims({ nbf: now() + 3600 })), /not (yet )?(active|valid)|nbf|before/i],
    ['a wrong issuer', () => signed(claims({ iss: 'https://evil.test' })), /iss/i],
    ['a missing issuer', () => signed(claims({ iss: undefined })), /iss/i],
    ['a wrong audience', () => signed(claims({ aud: 'someone-else' })), /aud/i],
    ['an audience list without ours', () => signed(claims({ aud: ['a', 'b'] })), /aud/i],
    ['a missing audience', () => signed(claims({ aud: undefined })), /aud/i],
    ['exp as a string', () => signed(claims({ exp: String(now() + 3600) })), /exp|invalid|malformed/i],
    ['a correctly signed payload that is a JSON string, not a claims object', () => signed('hello'), /claims|payload|object|malformed|invalid|token/i],
    ['a correctly signed payload that is a JSON array', () => signed([claims()]), /claims|payload|object|malformed|invalid|token/i],
    ['a correctly signed payload that is null', () => signed(null), /claims|payload|object|malformed|invalid|token/i],
    ['a header that is not JSON', () => `${b64url('{alg:HS256')}.${b64url(JSON.stringify(claims()))}.sig`, /malformed|invalid|jwt|token/i],
    ['an empty string', () => '', /token|missing|malformed|invalid/i],
    ['whitespace', () => '   ', /token|missing|malformed|invalid/i],
    ['"not.a.jwt"', () => 'not.a.jwt', /malformed|invalid|jwt/i],
    ['three dots', () => '...', /malformed|invalid|jwt|token/i],
    ['emoji segments', () => '🔑.🔑.🔑', /malformed|invalid|jwt|token/i],
    ['a NUL byte', () => '\u0000', /malformed|invalid|jwt|token/i],
    ['the secret itself', () => SECRET, /malformed|invalid|jwt|token/i],
    ['a "Bearer " prefix on an otherwise valid token', () => `Bearer ${signed(claims())}`, /malformed|invalid|jwt|token/i],
    ['a number', () => 42, /string|token|malformed|invalid|missing/i],
    ['an object', () => ({ sub: 'eve', topics: ['#'] }), /string|token|malformed|invalid|missing/i],
    ['an array of strings', () => [signed(claims())], /string|token|malformed|invalid|missing/i],
    ['true', () => true, /string|token|malformed|invalid|missing/i],
    ['null', () => null, /string|token|malformed|invalid|missing/i],
  ];

  it.each(cases)('refuses %s with unauthorized and says why', async (_, make, why) => {
    const refusal = await expectRefused(hs.url, { auth: { token: make() } });
    expectUnauthorized(refusal, why);
  });

  it('refuses a handshake without any token (no auth at all, and an auth object without token)', async () => {
    expectUnauthorized(await expectRefused(hs.url, {}), /token|missing|required/i);
    expectUnauthorized(await expectRefused(hs.url, { auth: {} }), /token|missing|required/i);
    expectUnauthorized(await expectRefused(hs.url, { auth: { tokens: valid() } }), /token|missing|required/i);
  });

  it('refuses a 100 KB token (unauthorized with a reason, or refused by the transport)', async () => {
    for (const big of ['x'.repeat(100 * 1024), signed(claims({ pad: 'p'.repeat(100 * 1024) }))]) {
      const refusal = await expectRefused(hs.url, { auth: { token: big } });
      if (refusal.data !== undefined) expectUnauthorized(refusal, /long|large|size|length|bytes|too/i);
      // else: the transport rejected the oversized handshake; refused is all we ask.
    }
  });

  it('refuses a 100 KB token over HTTP long-polling too', async () => {
    const refusal = await expectRefused(hs.url, { auth: { token: signed(claims({ pad: 'p'.repeat(100 * 1024) })) }, transports: ['polling'] });
    if (refusal.data !== undefined) expectUnauthorized(refusal, /long|large|size|length|bytes|too/i);
  });

  it('refuses many bad handshakes in parallel and still accepts a good one', async () => {
    const bad = Array.from({ length: 100 }, (_, i) => expectRefused(hs.url, { auth: { token: craftToken({ alg: 'none' }, claims({ i })) } }));
    for (const r of await Promise.all(bad)) expectUnauthorized(r, /./);
    const c = await hs.client(valid({ topics: ['ok.#'] }));
    expect(await c.subscribe('ok.1')).toMatchObject({ ok: true });
  });

  it('a token with malformed topics never grants anything (refused, or connected with nothing allowed)', async () => {
    const variants: unknown[] = ['#', 'builds.#', [42], ['a..b'], { 0: '#' }, [['#']], [null], ['#', 7]];
    for (const topics of variants) {
      const t = signed(claims({ topics }));
      const c = await connect(hs.url, t).catch((err: Error & { data?: { code: string; message: string } }) => err);
      if (c instanceof Error) {
        expectUnauthorized({ data: c.data, message: c.message }, /topic/i);
        continue;
      }
      hs.clients.push(c);
      for (const pattern of ['builds.1', '#', 'a.b']) {
        expect(await c.subscribe(pattern), `topics ${JSON.stringify(topics)} must not allow ${pattern}`).toMatchObject({ ok: false, error: { code: 'forbidden' } });
      }
    }
  });
});

describe('topics authorization by containment, through the socket', () => {
  it('a token without a topics claim connects, but every subscribe is forbidden and declares no queue', async () => {
    const c = await hs.client(signed(claims({ topics: undefined })));
    for (const pattern of ['#', '*', 'a', 'a.*', 'bystander.#', 'bystander.ping', '#.#', '*.#']) {
      const ack = await c.subscribe(pattern);
      expect(ack, pattern).toEqual({ ok: false, error: { code: 'forbidden', message: expect.any(String) } });
    }
    expect(await hs.extraQueues()).toEqual([]);
  });

  const cases: Array<[string[], string, boolean]> = [
    [['builds.#'], 'builds.*.finished', true],
    [['builds.#'], 'builds.#', true],
    [['builds.#'], 'builds', true], // `#` matches zero words
    [['builds.#'], 'builds.#.#', true],
    [['builds.#'], '#.builds.#', false],
    [['builds.#'], '#', false],
    [['builds.#'], '*.finished', false],
    [['builds.#'], 'Builds.1', false], // keys are case-sensitive
    [['builds.*'], 'builds.#', false],
    [['builds.*'], 'builds.*', true],
    [['builds.*'], 'builds.42', true],
    [['builds.*'], 'builds', false],
    [['builds.*'], 'builds.*.*', false],
    [['build.#'], 'builds.1', false], // not a string prefix
    [['builds'], 'builds.1', false],
    [['builds'], 'builds.#', false],
    [['builds.1'], 'builds.10', false],
    [['*.finished'], 'builds.finished', true],
    [['*.finished'], '#.finished', false],
    [['#.finished'], 'builds.*.finished', true],
    [['#'], '#', true],
    [['#'], '*.*.#', true],
    // only the union of two topics covers the pattern
    [['a', 'a.*.#'], 'a.#', true],
    [['builds.*', 'builds.*.*.#'], 'builds.*.#', true],
    [['builds.*', 'builds.*.*'], 'builds.*.#', false],
    [['x.*.y', 'x.y.*'], 'x.*.*', false],
    [['*.a', 'b.*'], '*.*', false],
    [['*.a', '*.*.#'], '*.#', false], // a single word that is not "a" escapes
    [['*.a', '*.*.#', '*'], '*.#', true],
  ];

  it.each(cases)('topics %j: subscribing to %s is allowed: %s', async (topics, pattern, allowed) => {
    const c = await hs.client(valid({ topics }));
    const ack = await c.subscribe(pattern);
    if (!allowed) {
      expect(ack).toEqual({ ok: false, error: { code: 'forbidden', message: expect.any(String) } });
      expect(await hs.extraQueues()).toEqual([]);
      return;
    }
    expect(ack).toEqual({ ok: true, id: expect.any(String) });
    // An allowed subscription really receives what it asked for.
    const key = pattern.split('.').filter((w) => w !== '#').map((w) => (w === '*' ? 'w' : w)).join('.') || 'a';
    await hs.publish(key, { probe: pattern });
    await c.messages.waitFor((m) => m.id === (ack as { id: string }).id && m.key === key);
  });
});

describe('refresh never lets a hostile token in', () => {
  const refusalCodes = ['unauthorized', 'bad_request'];
  it.each<[string, (sub: string) => unknown]>([
    ['alg none claiming every topic', (sub) => craftToken({ alg: 'none' }, claims({ sub, topics: ['#'] }))],
    ['HS512 with the right secret', (sub) => craftToken({ alg: 'HS512' }, claims({ sub }), { alg: 'sha512', key: SECRET })],
    ['an expired token', (sub) => signed(claims({ sub, exp: now() - 10 }))],
    ['a not-yet-valid token', (sub) => signed(claims({ sub, nbf: now() + 3600 }))],
    ['a wrong audience', (sub) => signed(claims({ sub, aud: 'other' }))],
    ['a wrong issuer', (sub) => signed(claims({ sub, iss: 'other' }))],
    ['another secret', (sub) => jwt.sign(claims({ sub }), 'another-secret-entirely')],
    ['a 100 KB token', (sub) => signed(claims({ sub, pad: 'p'.repeat(100 * 1024) }))],
    ['a number', () => 7],
    ['an object', (sub) => ({ sub, topics: ['#'] })],
    ['null', () => null],
  ])('refuses %s and keeps the connection exactly as it was', async (_, make) => {
    const sub = uniqueName('refresher');
    const c = await hs.client(valid({ sub, topics: ['mine.#'] }));
    const id = await c.mustSubscribe('mine.#');
    const ack = await c.emitWithAck('refresh', { token: make(sub) }).catch((err: Error) => err);
    if (ack instanceof Error) {
      // Only the 100 KB case may be dropped for its size (payload limit), never left hanging.
      // socket.io-client marks the socket disconnected before it fails the pending acks, so no grace period is needed.
      expect(c.socket.connected, `no ack and not disconnected: ${ack.message}`).toBe(false);
      return;
    }
    expect(ack.ok).toBe(false);
    expect(refusalCodes).toContain(ack.error.code);
    expect(ack.error.message).not.toContain(SECRET);
    // Nothing was widened ...
    expect(await c.subscribe('other.1')).toMatchObject({ ok: false, error: { code: 'forbidden' } });
    // ... and nothing was taken away.
    await hs.publish('mine.1', { after: 'refused refresh' });
    await c.messages.waitFor((m) => m.id === id && m.body.after === 'refused refresh');
    expect(c.unsubscribed.items).toEqual([]);
  });
});

describe('public-key gateway (RS256): algorithm confusion', () => {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const PEM = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const PRIVATE = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  let rs: Harness;

  beforeAll(async () => {
    rs = await Harness.start(
      { jwt: { publicKey: PEM, algorithms: ['RS256'] } },
      { bystanderToken: jwt.sign({ sub: 'bystander', topics: ['bystander.#'] }, PRIVATE, { algorithm: 'RS256', expiresIn: 3600 }) },
    );
  });
  afterEach(async () => {
    await rs.verifyHealthy();
  }, 90_000);
  afterAll(() => rs.bystander.close());

  it('accepts an RS256 token signed with the private key (control)', async () => {
    const c = await rs.client(jwt.sign({ sub: 'alice', topics: ['x.#'] }, PRIVATE, { algorithm: 'RS256', expiresIn: 60 }));
    expect(await c.subscribe('x.1')).toMatchObject({ ok: true });
  });

  it.each([
    ['the PEM text', PEM],
    ['the PEM text without its trailing newline', PEM.trimEnd()],
    ['the PEM with CRLF line ends', PEM.replace(/\n/g, '\r\n')],
    ['the DER bytes of the key', publicKey.export({ type: 'spki', format: 'der' })],
  ])('refuses an HS256 token whose HMAC key is %s (unauthorized)', async (_, key) => {
    const t = craftToken({ alg: 'HS256', typ: 'JWT' }, { sub: 'mallory', topics: ['#'], exp: now() + 3600 }, { alg: 'sha256', key });
    const refusal = await expectRefused(rs.url, { auth: { token: t } });
    expectUnauthorized(refusal, /algorithm|alg|signature|invalid/i);
  });

  it('refuses alg none and an RS256 token signed by another key pair', async () => {
    expectUnauthorized(await expectRefused(rs.url, { auth: { token: craftToken({ alg: 'none' }, { sub: 'm', topics: ['#'], exp: now() + 60 }) } }), /./);
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    expectUnauthorized(await expectRefused(rs.url, { auth: { token: jwt.sign({ sub: 'm', topics: ['#'] }, other, { algorithm: 'RS256', expiresIn: 60 }) } }), /signature|invalid/i);
  });

  it('even misconfigured with RS256 and HS256 allowed for a public key, the gateway refuses to start or refuses the confusion token', async () => {
    let gw;
    try {
      gw = await startTestGateway({ jwt: { publicKey: PEM, algorithms: ['RS256', 'HS256'] } });
    } catch (err) {
      expect((err as Error).message).toMatch(/HS256|algorithm|key/i);
      return;
    }
    const t = craftToken({ alg: 'HS256', typ: 'JWT' }, { sub: 'mallory', topics: ['#'], exp: now() + 3600 }, { alg: 'sha256', key: PEM });
    expectUnauthorized(await expectRefused(gw.url, { auth: { token: t } }), /algorithm|alg|signature|key|invalid/i);
  });
});
