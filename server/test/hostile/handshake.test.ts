/**
 * The handshake against a hostile client (issue 11): a connection that keeps
 * failing it is closed, refusals cannot flood the log or echo what the client
 * sent in full, the per-subject connection limit holds against CONNECT packets
 * racing in one request, and a connection that never completes the handshake
 * is not held for long.
 */
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintToken } from '../../src/auth/token-verifier.js';
import { HANDSHAKE_TIMEOUT_MS, MAX_FAILED_HANDSHAKES, MAX_JOINS_PER_CONNECTION } from '../../src/gateway/socket-server.js';
import { eventually, requireBroker } from '../support/broker.js';
import { startTestGateway, stopTestGateways } from '../support/gateway.js';
import { recordingLog } from '../support/recording-log.js';
import { craftToken, now, SECRET } from './harness.js';

const jwt = { secret: SECRET, algorithms: ['HS256'] };

beforeAll(requireBroker);
afterAll(stopTestGateways);

/** A bare engine.io WebSocket: every frame it receives, and when it closed. */
function openWs(url: string): Promise<{ ws: WebSocket; frames: string[]; closed: Promise<number> }> {
  const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/socket.io/?EIO=4&transport=websocket`);
  const frames: string[] = [];
  ws.on('message', (data) => {
    const text = data.toString();
    if (text === '2') ws.send('3');
    frames.push(text);
  });
  ws.on('error', () => undefined);
  const closed = new Promise<number>((resolve) => ws.once('close', () => resolve(Date.now())));
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ ws, frames, closed }));
    ws.once('error', reject);
  });
}

describe('failed handshakes', () => {
  it(`a connection is closed after ${MAX_FAILED_HANDSHAKES} failed handshakes, each answered with the reason first`, async () => {
    const gateway = await startTestGateway({ jwt });
    const { ws, frames, closed } = await openWs(gateway.url);
    // Retry with a bad token on the same connection, each time after the answer to the last.
    let isClosed = false;
    void closed.then(() => (isClosed = true));
    while (!isClosed) {
      ws.send(`40${JSON.stringify({ token: 'not-a-token' })}`);
      await Promise.race([closed, new Promise<void>((resolve) => ws.once('message', () => resolve()))]);
    }
    const refusals = frames.filter((f) => f.startsWith('44'));
    expect(refusals).toHaveLength(MAX_FAILED_HANDSHAKES);
    expect(JSON.parse(refusals[0]!.slice(2))).toEqual({ message: expect.any(String), data: { code: 'unauthorized', message: expect.any(String) } });
  });

  it('3,000 refusals with a 10,000-character alg write a handful of log lines, none echoing it in full', async () => {
    const { log, records } = recordingLog();
    const gateway = await startTestGateway({ jwt }, { log });
    const hostileAlg = 'A'.repeat(10_000);
    const bad = craftToken({ alg: hostileAlg, typ: 'JWT' }, { sub: 'x', exp: now() + 60 });
    const started = Date.now();
    let answered = 0;
    await Promise.all(
      Array.from({ length: 60 }, async () => {
        for (let round = 0; round < 50 / MAX_FAILED_HANDSHAKES + 1 && answered < 3_000; round++) {
          const { ws, frames, closed } = await openWs(gateway.url);
          for (let i = 0; i < MAX_FAILED_HANDSHAKES; i++) ws.send(`40${JSON.stringify({ token: bad })}`);
          await closed;
          answered += frames.filter((f) => f.startsWith('44')).length;
          const refusal = frames.find((f) => f.startsWith('44'));
          if (refusal) expect(refusal.length).toBeLessThan(1_000);
        }
      }),
    );
    const seconds = (Date.now() - started) / 1000;
    const lines = records.filter((r) => r.msg.startsWith('refused a handshake'));
    expect(answered).toBeGreaterThanOrEqual(3_000);
    // 5 a second, plus the burst the limiter starts with.
    expect(lines.length).toBeLessThanOrEqual(Math.ceil(seconds * 5) + 6);
    for (const line of lines) expect(JSON.stringify(line).length).toBeLessThan(1_000);
    const reported = lines.reduce((sum, line) => sum + 1 + ((line.suppressed as number | undefined) ?? 0), 0);
    expect(reported).toBeLessThanOrEqual(answered);
  }, 120_000);
});

describe('rejoining on one connection', () => {
  it(`a connection that joins and leaves the namespace again and again is closed after ${MAX_JOINS_PER_CONNECTION} joins`, async () => {
    const gateway = await startTestGateway({ jwt });
    const token = mintToken({ secret: SECRET, sub: 'rejoiner', topics: ['a.#'], ttlSeconds: 600 });
    const { ws, frames, closed } = await openWs(gateway.url);
    let isClosed = false;
    void closed.then(() => (isClosed = true));
    let joins = 0;
    while (!isClosed && joins < 50) {
      const before = frames.length;
      ws.send(`40${JSON.stringify({ token })}`);
      await Promise.race([closed, new Promise<void>((resolve) => ws.once('message', () => resolve()))]);
      if (frames.slice(before).some((f) => f.startsWith('40{'))) {
        joins++;
        ws.send('41'); // leave again, and wait until the gateway has let the socket go
        await eventually(async () => /^topicgate_connections 0$/m.test(await (await fetch(gateway.metricsUrl!)).text()), 'the socket left');
      }
    }
    expect(isClosed).toBe(true);
    expect(joins).toBe(MAX_JOINS_PER_CONNECTION);
  });
});

describe('the per-subject connection limit', () => {
  it('holds against several CONNECT packets in one polling request', async () => {
    const gateway = await startTestGateway({ jwt, maxConnectionsPerSubject: 1 });
    const token = mintToken({ secret: SECRET, sub: 'mallory', topics: ['a.#'], ttlSeconds: 600 });
    const base = `${gateway.url}/socket.io/?EIO=4&transport=polling`;
    const open = await (await fetch(base)).text();
    const { sid } = JSON.parse(open.slice(open.indexOf('{'))) as { sid: string };
    const connect = `40${JSON.stringify({ token })}`;
    const post = await fetch(`${base}&sid=${sid}`, { method: 'POST', body: Array.from({ length: 5 }, () => connect).join('\x1e') });
    expect(post.status).toBe(200);
    const answers: string[] = [];
    while (answers.length < 5) {
      const body = await (await fetch(`${base}&sid=${sid}`)).text();
      answers.push(...body.split('\x1e').filter((p) => p.startsWith('40') || p.startsWith('44')));
    }
    expect(answers.filter((p) => p.startsWith('40'))).toHaveLength(1);
    expect(answers.filter((p) => p.startsWith('44')).map((p) => (JSON.parse(p.slice(2)) as { data: { code: string } }).data.code)).toEqual([
      'limit_exceeded',
      'limit_exceeded',
      'limit_exceeded',
      'limit_exceeded',
    ]);
  });
});

describe('a connection that never completes the handshake', () => {
  it(`is closed after ${HANDSHAKE_TIMEOUT_MS / 1000} s, not socket.io's default 45 s`, async () => {
    const gateway = await startTestGateway({ jwt });
    const opened = Date.now();
    const { closed } = await openWs(gateway.url); // and never sends CONNECT
    const at = await Promise.race([closed, new Promise<number>((resolve) => setTimeout(() => resolve(-1), HANDSHAKE_TIMEOUT_MS + 5_000))]);
    expect(at, 'still open 5 s after the handshake timeout').not.toBe(-1);
    expect(at - opened).toBeGreaterThanOrEqual(HANDSHAKE_TIMEOUT_MS - 100);
  }, 30_000);
});
