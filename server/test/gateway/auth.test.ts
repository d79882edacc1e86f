/**
 * Who may see what, end to end: handshake authentication, topic
 * authorization by containment, token refresh and expiry, per-subject
 * connection limits, CORS, and the `topicgate token` command.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import jwt from 'jsonwebtoken';
import { io } from 'socket.io-client';
import { listQueues } from '../support/broker.js';
import { CLI_PATH } from '../support/child-gateway.js';
import { describe, eventually, expect, test as it, TEST_SECRET as SECRET, withAuth } from '../support/kit.js';

it.override({
  gatewayConfig: withAuth({ maxConnectionsPerSubject: 3, corsOrigins: ['https://app.example'] }),
  tokenDefaults: { sub: 'alice', topics: ['builds.#', 'logs.#'] },
});

/** Connects expecting a refusal; resolves with `connect_error`'s data. */
async function refusal(url: string, t: unknown): Promise<{ code: string; message: string }> {
  const socket = io(url, { auth: { token: t }, transports: ['websocket'], reconnection: false, forceNew: true });
  try {
    return await new Promise((resolve, reject) => {
      socket.once('connect', () => reject(new Error('the gateway accepted the connection')));
      socket.once('connect_error', (err) => resolve((err as Error & { data: { code: string; message: string } }).data));
    });
  } finally {
    socket.close();
  }
}

describe('the handshake', () => {
  it('accepts a valid token', async ({ gateway, connect, token }) => {
    const c = await connect(gateway.url, token());
    expect(c.socket.connected).toBe(true);
  });

  it.for([
    ['no token', undefined, /token/i],
    ['an expired token', jwt.sign({ sub: 'a', topics: [], exp: Math.floor(Date.now() / 1000) - 60 }, SECRET), /expired/],
    ['a token signed with another secret', jwt.sign({ sub: 'a', topics: [] }, 'another-secret', { expiresIn: 60 }), /signature/],
    ['garbage', 'not.a.jwt', /malformed|invalid/i],
  ] as const)('refuses %s with connect_error unauthorized and says why', async ([, t, why], { gateway }) => {
    const data = await refusal(gateway.url, t);
    expect(data.code).toBe('unauthorized');
    expect(data.message).toMatch(why);
    expect(data.message).not.toContain(SECRET);
  });
});

describe('topic authorization', () => {
  it('allows patterns the token\'s topics contain and refuses others with forbidden', async ({ gateway, connect, token }) => {
    const c = await connect(gateway.url, token({ topics: ['builds.#', 'logs.*.append'] }));
    expect(await c.subscribe('builds.*.finished')).toMatchObject({ ok: true });
    expect(await c.subscribe('logs.7.append')).toMatchObject({ ok: true });
    expect(await c.subscribe('logs.#')).toEqual({ ok: false, error: { code: 'forbidden', message: expect.stringContaining('logs.#') } });
    expect(await c.subscribe('#')).toMatchObject({ ok: false, error: { code: 'forbidden' } });
  });

  it('a token without topics connects but may subscribe to nothing', async ({ gateway, connect, token }) => {
    const c = await connect(gateway.url, token({ sub: 'bob', topics: [], ttl: 60 }));
    expect(await c.subscribe('builds.1.finished')).toMatchObject({ ok: false, error: { code: 'forbidden' } });
  });
});

describe('token lifetime', () => {
  it('disconnects at exp without a refresh and deletes the socket\'s queues', async ({ gateway, connect, token }) => {
    // Long enough for rabbitmqctl to see the queue on a loaded machine before the token runs out.
    const c = await connect(gateway.url, token({ ttl: 5 }));
    const disconnected = new Promise<string>((resolve) => c.socket.once('disconnect', resolve));
    const id = await c.mustSubscribe('builds.#');
    expect(await listQueues(`${gateway.queuePrefix}${id}`)).toHaveLength(1);
    expect(await disconnected).toBe('io server disconnect');
    await eventually(async () => (await listQueues(`${gateway.queuePrefix}${id}`)).length === 0, 'queue deleted after expiry');
  });

  it('refresh replaces the token: subscriptions it no longer allows end with unsubscribed forbidden and lose their queues', async ({ gateway, connect, token }) => {
    const c = await connect(gateway.url, token({ topics: ['builds.#'] }));
    const kept = await c.mustSubscribe('builds.1.*');
    const revoked = await c.mustSubscribe('builds.#');
    expect(await c.emitWithAck('refresh', { token: token({ topics: ['builds.1.#'] }) })).toEqual({ ok: true });
    expect(await c.unsubscribed.waitFor((n) => n.id === revoked)).toEqual({ id: revoked, reason: 'forbidden' });
    expect(await listQueues(`${gateway.queuePrefix}${revoked}`)).toEqual([]);
    await gateway.mq.produce('builds.1.finished', {});
    await c.messages.waitFor((m) => m.id === kept);
    expect(await c.subscribe('builds.2.finished')).toMatchObject({ ok: false, error: { code: 'forbidden' } });
  });

  it('a refresh keeps the connection past the first token\'s exp', async ({ gateway, connect, token }) => {
    const c = await connect(gateway.url, token({ ttl: 2 }));
    const id = await c.mustSubscribe('logs.#');
    expect(await c.emitWithAck('refresh', { token: token({ ttl: 60 }) })).toEqual({ ok: true });
    // Let the first token's exp pass: the time itself is what is under test.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    expect(c.socket.connected).toBe(true);
    await gateway.mq.produce('logs.1.append', {});
    await c.messages.waitFor((m) => m.id === id);
  });

  it('refuses a refresh with an invalid token, or one for another subject, and keeps the connection as it was', async ({ gateway, connect, token }) => {
    const c = await connect(gateway.url, token());
    const id = await c.mustSubscribe('logs.#');
    expect(await c.emitWithAck('refresh', { token: 'garbage' })).toMatchObject({ ok: false, error: { code: 'unauthorized' } });
    expect(await c.emitWithAck('refresh', { token: token({ sub: 'mallory' }) })).toEqual({
      ok: false,
      error: { code: 'unauthorized', message: expect.stringContaining('same sub') },
    });
    expect(await c.emitWithAck('refresh', 'not an object')).toMatchObject({ ok: false, error: { code: 'bad_request' } });
    await gateway.mq.produce('logs.2.append', {});
    await c.messages.waitFor((m) => m.id === id);
  });
});

describe('limits and CORS', () => {
  it('refuses a connection past the per-subject limit with limit_exceeded, and accepts again after one closes', async ({ gateway, connect, token }) => {
    const t = token({ sub: 'carol' });
    const three = [await connect(gateway.url, t), await connect(gateway.url, t), await connect(gateway.url, t)];
    expect(await refusal(gateway.url, t)).toEqual({ code: 'limit_exceeded', message: expect.stringContaining('at most 3 connections') });
    three[0]!.close();
    await eventually(async () => (await connect(gateway.url, t).catch(() => null)) !== null, 'a slot frees up');
  });

  it('answers HTTP requests from allowed origins only with CORS headers', async ({ gateway }) => {
    const allowed = await fetch(`${gateway.url}/healthz`, { headers: { origin: 'https://app.example' } });
    expect(allowed.headers.get('access-control-allow-origin')).toBe('https://app.example');
    const other = await fetch(`${gateway.url}/healthz`, { headers: { origin: 'https://evil.example' } });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('refuses WebSocket connections from other origins, which CORS headers alone would not stop', async ({ gateway, token }) => {
    const connects = (origin: string) => {
      const socket = io(gateway.url, { auth: { token: token() }, transports: ['websocket'], reconnection: false, forceNew: true, extraHeaders: { origin } });
      return new Promise<boolean>((resolve) => {
        socket.once('connect', () => resolve(true));
        socket.once('connect_error', () => resolve(false));
      }).finally(() => socket.close());
    };
    expect(await connects('https://evil.example')).toBe(false);
    expect(await connects('https://app.example')).toBe(true);
  });
});

describe('topicgate token', () => {
  it('mints a token the gateway accepts, with the topics asked for', async ({ gateway, connect, token }) => {
    const { stdout } = await promisify(execFile)(process.execPath, [CLI_PATH, 'token', '--sub', 'dave', '--topics', 'builds.#,logs.7.*', '--ttl', '10m'], {
      env: { ...process.env, TOPICGATE_JWT_SECRET: SECRET },
    });
    const minted = stdout.trim();
    const claims = jwt.verify(minted, SECRET) as { sub: string; topics: string[]; exp: number; iat: number };
    expect(claims).toMatchObject({ sub: 'dave', topics: ['builds.#', 'logs.7.*'] });
    expect(claims.exp - claims.iat).toBe(600);
    const c = await connect(gateway.url, minted);
    expect(await c.subscribe('logs.7.append')).toMatchObject({ ok: true });
    expect(await c.subscribe('logs.8.append')).toMatchObject({ ok: false, error: { code: 'forbidden' } });
  });
});
