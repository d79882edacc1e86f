/**
 * Tokens verified by a JWKS endpoint (TOPICGATE_JWT_JWKS_URL), end to end:
 * a local JWKS server (node:http, keys from node:crypto) and a gateway on
 * RabbitMQ; handshakes and refreshes through socket.io. Keys are chosen by
 * `kid`, cached, fetched again for an unknown `kid` at most once per cooldown
 * (here 1 s; 30 s by default), and dropped when the endpoint no longer lists them.
 */
import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ClientEvent } from '@topicgate/shared';
import jwt from 'jsonwebtoken';
import { io } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireBroker } from '../support/broker.js';
import { connectClient, startTestGateway, stopTestGateways, type TestClient, type TestGateway } from '../support/gateway.js';

const COOLDOWN_MS = 1_000;
const MAX_AGE_MS = 6_000;

interface SigningKey {
  kid: string;
  privateKey: KeyObject;
  jwk: Record<string, unknown>;
}

function rsaKey(kid: string): SigningKey {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { kid, privateKey, jwk: { ...publicKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' } };
}

/** A JWKS endpoint whose key list the test changes, counting every request. */
class JwksServer {
  keys: SigningKey[] = [];
  /** Answer 500 instead of the key set (the identity provider is down). */
  failing = false;
  fetches = 0;
  private server!: Server;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      this.fetches++;
      if (this.failing) {
        res.writeHead(500).end('down');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: this.keys.map((k) => k.jwk) }));
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/.well-known/jwks.json`;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

const A = rsaKey('key-a');
const B = rsaKey('key-b');
const C = rsaKey('key-c');

function tokenFor(key: SigningKey, claims: { sub?: string; kid?: string; topics?: string[] } = {}): string {
  return jwt.sign({ sub: claims.sub ?? 'alice', topics: claims.topics ?? ['builds.#'] }, key.privateKey, {
    algorithm: 'RS256',
    keyid: claims.kid ?? key.kid,
    expiresIn: 600,
  });
}

/** The `connect_error` data of a refused handshake; fails when the gateway accepts. */
async function refusal(url: string, token: string): Promise<{ code: string; message: string }> {
  const socket = io(url, { auth: { token }, transports: ['websocket'], reconnection: false, forceNew: true });
  try {
    return await new Promise((resolve, reject) => {
      socket.once('connect', () => reject(new Error('the gateway accepted the token')));
      socket.once('connect_error', (err: Error & { data?: { code: string; message: string } }) => resolve(err.data ?? { code: 'none', message: err.message }));
    });
  } finally {
    socket.close();
  }
}

const jwks = new JwksServer();
let gateway: TestGateway;
const clients: TestClient[] = [];
async function client(token: string): Promise<TestClient> {
  const c = await connectClient(gateway.url, token);
  clients.push(c);
  return c;
}
// Only where time itself is under test: the refetch cooldown and the keys' max age, and handshakes spread over time.
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

beforeAll(async () => {
  await requireBroker();
  await jwks.start();
  jwks.keys = [A];
  gateway = await startTestGateway({
    jwt: { jwksUrl: jwks.url, algorithms: ['RS256'], jwks: { cooldownMs: COOLDOWN_MS, maxAgeMs: MAX_AGE_MS } },
  });
});
afterAll(async () => {
  for (const c of clients) c.close();
  await stopTestGateways();
  await jwks.close();
});

describe('a gateway verifying tokens with a JWKS endpoint', () => {
  it('accepts a token signed with a key the endpoint lists, fetching the key set once for many handshakes', async () => {
    const c = await client(tokenFor(A));
    expect(await c.subscribe('builds.1.finished')).toMatchObject({ ok: true });
    const before = jwks.fetches;
    for (let i = 0; i < 10; i++) (await client(tokenFor(A))).close();
    expect(jwks.fetches - before, 'handshakes with a known kid use the cached key set').toBe(0);
    expect(jwks.fetches).toBeLessThanOrEqual(1);
  });

  it('refuses an HMAC token without asking the endpoint (public-key algorithms only)', async () => {
    const before = jwks.fetches;
    const hmac = jwt.sign({ sub: 'mallory', topics: ['#'] }, randomBytes(32), { algorithm: 'HS256', keyid: 'key-a', expiresIn: 60 });
    expect(await refusal(gateway.url, hmac)).toMatchObject({ code: 'unauthorized', message: 'token algorithm HS256 is not allowed (allowed: RS256)' });
    expect(jwks.fetches).toBe(before);
  });

  it('after a rotation to key B (A removed), accepts B once it has fetched the set again, and then refuses A', async () => {
    jwks.keys = [B];
    await sleep(COOLDOWN_MS + 100); // the last fetch is older than the cooldown
    const before = jwks.fetches;
    const b = await client(tokenFor(B));
    expect(jwks.fetches - before, 'an unknown kid makes the gateway fetch the key set again').toBe(1);
    expect(await b.subscribe('builds.2.finished')).toMatchObject({ ok: true });

    const refused = await refusal(gateway.url, tokenFor(A));
    expect(refused.code).toBe('unauthorized');
    expect(refused.message).toMatch(/key-a/);
    expect(refused.message).toMatch(/no key|not in the JWKS|not found/i);
  });

  it('refresh goes through the same key set: a B token is taken, an A token refused', async () => {
    const c = await client(tokenFor(B, { topics: ['builds.#'] }));
    const ok = await c.emitWithAck(ClientEvent.Refresh, { token: tokenFor(B, { topics: ['builds.#', 'logs.#'] }) });
    expect(ok).toEqual({ ok: true });
    expect(await c.subscribe('logs.1.append')).toMatchObject({ ok: true });
    const refused = await c.emitWithAck(ClientEvent.Refresh, { token: tokenFor(A) });
    expect(refused).toMatchObject({ ok: false, error: { code: 'unauthorized' } });
    expect(refused.error.message).toMatch(/key-a/);
  });

  it('a flood of tokens with random kids fetches the key set at most once per cooldown', async () => {
    await sleep(COOLDOWN_MS + 100);
    const before = jwks.fetches;
    const started = Date.now();
    const HANDSHAKES = 150;
    const refusals = await Promise.all(
      Array.from({ length: HANDSHAKES }, (_, i) => sleep(i * 10).then(() => refusal(gateway.url, tokenFor(B, { kid: randomBytes(8).toString('hex') })))),
    );
    const elapsed = Date.now() - started;
    expect(refusals.every((r) => r.code === 'unauthorized')).toBe(true);
    const fetched = jwks.fetches - before;
    expect(fetched).toBeGreaterThanOrEqual(1);
    expect(fetched, `${fetched} fetches for ${HANDSHAKES} unknown kids in ${elapsed} ms`).toBeLessThanOrEqual(Math.floor(elapsed / COOLDOWN_MS) + 1);
    // Legitimate tokens still pass meanwhile.
    (await client(tokenFor(B))).close();
  });

  it('while the endpoint fails, unknown kids still cannot make the gateway ask it more than once per cooldown', async () => {
    await sleep(COOLDOWN_MS + 100);
    jwks.failing = true;
    try {
      const before = jwks.fetches;
      const started = Date.now();
      const refusals = await Promise.all(
        Array.from({ length: 100 }, (_, i) => sleep(i * 15).then(() => refusal(gateway.url, tokenFor(B, { kid: `flood-${i}` })))),
      );
      const elapsed = Date.now() - started;
      expect(refusals.every((r) => r.code === 'unauthorized')).toBe(true);
      const fetched = jwks.fetches - before;
      expect(fetched, `${fetched} requests to a failing endpoint in ${elapsed} ms`).toBeLessThanOrEqual(Math.floor(elapsed / COOLDOWN_MS) + 1);
      // A key already in the cache keeps working while the endpoint is down (within the cache's max age).
      (await client(tokenFor(B))).close();
    } finally {
      jwks.failing = false;
    }
  });

  it('a key the endpoint stopped listing is refused once the cached set is older than its max age', async () => {
    jwks.keys = [C];
    (await client(tokenFor(B))).close(); // still cached
    await sleep(MAX_AGE_MS + 200);
    const refused = await refusal(gateway.url, tokenFor(B));
    expect(refused.code).toBe('unauthorized');
    expect(refused.message).toMatch(/key-b/);
    (await client(tokenFor(C))).close();
  });
});
