/**
 * Shared scaffolding for the hostile-input suites (black-box: everything here
 * is derived from docs/protocol.md §3, §4, §5, §10 and the public test support).
 *
 * A `Harness` is one gateway on the real RabbitMQ with a well-behaved
 * "bystander" client subscribed to `bystander.#`. After every test,
 * `verifyHealthy()` proves that whatever the test threw at the gateway:
 *   - the bystander still receives a message it subscribed to, with its seq
 *     still growing by one,
 *   - the gateway holds no queue but the bystander's,
 *   - its channel count on the broker is back to where it was before.
 */
import { createHmac } from 'node:crypto';
import { WebSocket } from 'ws';
import { io, type Socket, type ManagerOptions, type SocketOptions } from 'socket.io-client';
import { expect } from 'vitest';
import type { GatewayConfig } from '../../src/config.js';
import { channelCount, listQueues, requireBroker } from '../support/broker.js';
import type { ChildGateway } from '../support/child-gateway.js';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { connectClient, eventually, mintTestToken, publishJson, uniqueName, type TestClaims, type TestClient } from '../support/kit.js';

/**
 * Every code an `{ ok: false }` ack may carry (docs/protocol.md §5).
 * Restated here on purpose, not imported from @topicgate/shared: this suite is
 * a black-box restatement of the contract, so a code added to or dropped from
 * the implementation's list must show up here as a failure, not pass silently.
 */
export const ACK_CODES = ['invalid_pattern', 'forbidden', 'limit_exceeded', 'unavailable', 'bad_request', 'unknown_subscription', 'unauthorized'] as const;

/** Unique per run, so a message that leaks it can be spotted. */
export const SECRET = `${uniqueName('hostile-secret')}-long-enough-for-hs256`;

// ---------------------------------------------------------------- tokens

export function b64url(input: string | Buffer): string {
  return Buffer.from(input).toString('base64url');
}

/** A JWT assembled by hand: any header, any payload, signed (HMAC) with `hmacKey` or not at all. */
export function craftToken(header: unknown, payload: unknown, hmacKey?: { alg: 'sha256' | 'sha384' | 'sha512'; key: string | Buffer }): string {
  const head = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`;
  const sig = hmacKey ? createHmac(hmacKey.alg, hmacKey.key).update(head).digest('base64url') : '';
  return `${head}.${sig}`;
}

export const now = (): number => Math.floor(Date.now() / 1000);

/** A token the hostile gateways (secret SECRET) accept. */
export function token(claims: TestClaims = {}): string {
  return mintTestToken(SECRET, claims);
}

// ---------------------------------------------------------------- connections

export interface Refusal {
  /** `connect_error` data; undefined when the transport itself refused (no data). */
  data: { code?: string; message?: string } | undefined;
  message: string;
}

/** Connects with any `auth` value and resolves with the refusal; fails if the gateway accepts. */
export async function expectRefused(url: string, opts: Partial<ManagerOptions & SocketOptions>): Promise<Refusal> {
  const socket = io(url, { transports: ['websocket'], reconnection: false, forceNew: true, timeout: 10_000, ...opts });
  try {
    return await new Promise<Refusal>((resolve, reject) => {
      socket.once('connect', () => reject(new Error(`the gateway accepted a connection with auth ${JSON.stringify(opts.auth)?.slice(0, 200)}`)));
      socket.once('connect_error', (err: Error & { data?: Refusal['data'] }) => resolve({ data: err.data, message: err.message }));
      // A transport that closes on an oversized handshake surfaces as a disconnect before connect.
      socket.once('disconnect', (reason) => resolve({ data: undefined, message: `transport refused: ${reason}` }));
      setTimeout(() => reject(new Error('the handshake neither connected nor was refused within 15 s')), 15_000);
    });
  } finally {
    socket.close();
  }
}

/** Connects (any transport, any options); rejects with the connect_error. */
export async function rawConnect(url: string, opts: Partial<ManagerOptions & SocketOptions> = {}): Promise<Socket> {
  const socket = io(url, { transports: ['websocket'], reconnection: false, forceNew: true, ...opts });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('connect_error', (err) => {
      socket.close();
      reject(err);
    });
  });
  return socket;
}

/** Resolves with the disconnect reason, or null if the socket is still connected after `ms`. */
export function disconnectWithin(socket: Socket, ms: number): Promise<string | null> {
  if (!socket.connected) return Promise.resolve('already disconnected');
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(null), ms);
    socket.once('disconnect', (reason) => {
      clearTimeout(timer);
      resolve(reason);
    });
  });
}

// ---------------------------------------------------------------- ack shapes

export type AnyAck = { ok: true; id?: string } | { ok: false; error: { code: string; message: string } };

/** Asserts an ack is well-formed per docs/protocol.md §5; returns it typed. `success` says what a success must carry. */
export function assertWellFormed(ack: unknown, success: 'id' | 'plain', context: string): AnyAck {
  const where = `${context}: ack ${JSON.stringify(ack)?.slice(0, 300)}`;
  expect(ack, where).toBeTypeOf('object');
  expect(ack, where).not.toBeNull();
  const a = ack as Record<string, unknown>;
  if (a.ok === true) {
    if (success === 'id') {
      expect(Object.keys(a).sort(), where).toEqual(['id', 'ok']);
      expect(a.id, where).toBeTypeOf('string');
      expect((a.id as string).length, where).toBeGreaterThan(0);
    } else {
      expect(a, where).toEqual({ ok: true });
    }
  } else {
    expect(a.ok, where).toBe(false);
    expect(Object.keys(a).sort(), where).toEqual(['error', 'ok']);
    const error = a.error as Record<string, unknown>;
    expect(error, where).toBeTypeOf('object');
    expect(Object.keys(error).sort(), where).toEqual(['code', 'message']);
    expect(ACK_CODES as readonly unknown[], where).toContain(error.code);
    expect(error.message, where).toBeTypeOf('string');
    expect((error.message as string).length, where).toBeGreaterThan(0);
  }
  return a as AnyAck;
}

/** emitWithAck that turns a missing ack into a failure that names the input. */
export async function ackOf(socket: Socket, event: string, args: unknown[], timeoutMs = 10_000): Promise<unknown> {
  try {
    return await socket.timeout(timeoutMs).emitWithAck(event, ...args);
  } catch (err) {
    throw new Error(`no ack within ${timeoutMs} ms for ${JSON.stringify(event)} ${JSON.stringify(args)?.slice(0, 300)} (socket connected: ${socket.connected}): ${(err as Error).message}`);
  }
}

// ---------------------------------------------------------------- contract oracles (docs/protocol.md §3)

const WORD = /^[A-Za-z0-9_:-]+$/;

/** Is `pattern` a valid pattern per docs/protocol.md §3 (independent re-statement of the contract)? */
export function isValidPattern(pattern: unknown): pattern is string {
  if (typeof pattern !== 'string' || pattern === '') return false;
  if (Buffer.byteLength(pattern, 'utf8') > 255) return false;
  return pattern.split('.').every((w) => w === '*' || w === '#' || WORD.test(w));
}

/** RabbitMQ topic matching of one key against one pattern (both as word arrays). */
export function topicMatches(pattern: readonly string[], key: readonly string[]): boolean {
  const memo = new Map<string, boolean>();
  const go = (p: number, k: number): boolean => {
    const m = `${p},${k}`;
    const hit = memo.get(m);
    if (hit !== undefined) return hit;
    let r: boolean;
    if (p === pattern.length) r = k === key.length;
    else if (pattern[p] === '#') r = go(p + 1, k) || (k < key.length && go(p, k + 1));
    else if (k === key.length) r = false;
    else r = (pattern[p] === '*' || pattern[p] === key[k]) && go(p + 1, k + 1);
    memo.set(m, r);
    return r;
  };
  return go(0, 0);
}

/**
 * Brute-force containment: is every key (of at least one word) that `pattern`
 * matches also matched by one of `topics`? Enumerates keys over the words that
 * appear plus one fresh word, up to `maxLen` words; exact for the small
 * patterns the fuzz generates (a counterexample, if any, is short).
 */
export function containedBruteForce(pattern: string, topics: readonly string[], maxLen = 7): boolean {
  const p = pattern.split('.');
  const ts = topics.map((t) => t.split('.'));
  const words = [...new Set([...p, ...ts.flat()].filter((w) => w !== '*' && w !== '#')), 'zz-fresh'];
  const key: string[] = [];
  const search = (): boolean => {
    if (key.length > 0 && topicMatches(p, key) && !ts.some((t) => topicMatches(t, key))) return false;
    if (key.length === maxLen) return true;
    for (const w of words) {
      key.push(w);
      const ok = search();
      key.pop();
      if (!ok) return false;
    }
    return true;
  };
  return search();
}

// ---------------------------------------------------------------- the harness

export interface HarnessOptions {
  /** Token for the bystander (needs `bystander.#`); omit when auth is off. */
  bystanderToken?: string;
}

/** What a harness needs from a gateway, in-process or a child process. */
export interface Target {
  url: string;
  queuePrefix: string;
  connectionName: string;
  publish(key: string, body: Record<string, unknown>): Promise<void>;
}

export class Harness {
  readonly clients: TestClient[] = [];
  readonly sockets: Socket[] = [];
  readonly cleanups: Array<() => void> = [];
  bystander!: TestClient;
  bystanderId!: string;
  bystanderQueues!: string[];
  baselineChannels!: number;
  private pings = 0;

  constructor(readonly gateway: Target) {}

  static async start(overrides: Partial<GatewayConfig> = {}, options: HarnessOptions = {}): Promise<Harness> {
    const gateway: TestGateway = await startTestGateway(overrides);
    return Harness.around(
      { url: gateway.url, queuePrefix: gateway.queuePrefix, connectionName: gateway.connectionName, publish: (key, body) => gateway.mq.produce(key, body) },
      options,
    );
  }

  static async around(gateway: Target, options: HarnessOptions = {}): Promise<Harness> {
    const h = new Harness(gateway);
    h.bystander = await connect(gateway.url, options.bystanderToken);
    h.bystanderId = await h.bystander.mustSubscribe('bystander.#');
    await h.ping();
    h.bystanderQueues = (await listQueues(gateway.queuePrefix)).map((q) => q.name);
    expect(h.bystanderQueues, 'the bystander has exactly one queue').toHaveLength(1);
    h.baselineChannels = await channelCount(gateway.connectionName);
    expect(h.baselineChannels, 'the gateway has channels on the broker').toBeGreaterThan(0);
    return h;
  }

  get url(): string {
    return this.gateway.url;
  }

  /** A client that is closed after the test. */
  async client(tok?: string): Promise<TestClient> {
    const c = await connect(this.gateway.url, tok);
    this.clients.push(c);
    return c;
  }

  /** Any socket that is closed after the test. */
  track(socket: Socket): Socket {
    this.sockets.push(socket);
    return socket;
  }

  async queues(): Promise<string[]> {
    return (await listQueues(this.gateway.queuePrefix)).map((q) => q.name);
  }

  /** Queues of this gateway other than the bystander's. */
  async extraQueues(): Promise<string[]> {
    return (await this.queues()).filter((q) => !this.bystanderQueues.includes(q));
  }

  async publish(key: string, body: Record<string, unknown>): Promise<void> {
    await this.gateway.publish(key, body);
  }

  /** The bystander receives a fresh message, and its seq keeps growing by one. */
  async ping(): Promise<void> {
    const n = ++this.pings;
    const marker = uniqueName('ping');
    await this.gateway.publish('bystander.ping', { n, marker });
    const got = await this.bystander.messages.waitFor((m) => m.id === this.bystanderId && m.body.marker === marker, 10_000);
    expect(got.seq, 'bystander seq grows by one per delivery').toBe(this.bystander.deliveriesFor(this.bystanderId).length);
    expect(this.bystander.socket.connected, 'the bystander is still connected').toBe(true);
  }

  async closeClients(): Promise<void> {
    for (const c of this.clients.splice(0)) c.close();
    for (const s of this.sockets.splice(0)) s.close();
    for (const f of this.cleanups.splice(0)) f();
  }

  /** A raw-frame socket that is closed after the test. */
  async raw(auth?: unknown): Promise<RawSocket> {
    const r = await RawSocket.connect(this.gateway.url, auth);
    this.cleanups.push(() => r.close());
    return r;
  }

  /**
   * The after-each invariant. Probes that fail because the shared broker is
   * briefly down (other suites restart its app) are retried until the deadline.
   */
  async verifyHealthy(): Promise<void> {
    await this.closeClients();
    const tolerant = (probe: () => Promise<boolean>) => () => probe().catch(() => false);
    const same = (a: string[]) => a.length === this.bystanderQueues.length && a.every((q, i) => q === this.bystanderQueues[i]);
    const queues = eventually(tolerant(async () => same(await this.queues())), 'the gateway holds no queue but the bystander\'s (which is still there)', 30_000).catch(async (err) => {
      throw new Error(`${(err as Error).message}; queues now: ${(await this.queues()).join(', ')}; bystander's: ${this.bystanderQueues.join(', ')}`);
    });
    const channels = eventually(tolerant(async () => (await channelCount(this.gateway.connectionName)) === this.baselineChannels), `channel count back to ${this.baselineChannels}`, 30_000).catch(async (err) => {
      throw new Error(`${(err as Error).message}; now ${await channelCount(this.gateway.connectionName)}`);
    });
    const results = await Promise.allSettled([this.pingPatiently(), queues, channels]);
    for (const r of results) if (r.status === 'rejected') throw r.reason;
  }

  /** ping, retried while the broker is unavailable (not while it answers wrongly). */
  private async pingPatiently(deadlineMs = 30_000): Promise<void> {
    let lastUnavailable: unknown;
    let wrong: unknown;
    await eventually(
      async () => {
        try {
          await this.ping();
          return true;
        } catch (err) {
          if (!/unavailable|broker|channel closed|connection/i.test((err as Error).message)) throw (wrong = err);
          lastUnavailable = err;
          return false;
        }
      },
      'the bystander to be served again',
      { timeoutMs: deadlineMs, intervalMs: 500 },
    ).catch((err: unknown) => {
      // A wrong answer fails at once, as itself; out of time, the last "unavailable" says more than the timeout.
      throw err === wrong ? err : (lastUnavailable ?? err);
    });
  }
}

/** The kit's client: connects with this token (none when omitted); rejects with the connect_error. */
export const connect = connectClient;

// ---------------------------------------------------------------- child gateways

/** Publishes a JSON body to a child gateway's exchange (with confirms): the kit's publisher. */
export const publishTo = publishJson;

/** The child process is alive and answers /healthz, and logged nothing fatal. */
export async function assertChildAlive(child: ChildGateway): Promise<void> {
  // Node sets these when it reports the exit: no need to give `exited` time to settle.
  const exited = child.process.exitCode ?? child.process.signalCode;
  expect(exited, `the gateway process exited; stderr tail:\n${child.stderr().slice(-3000)}`).toBeNull();
  const res = await fetch(`${child.url}/healthz`);
  expect(res.status).toBe(200);
  const fatal = child.stderr().split('\n').filter((l) => /"level":(60)|uncaught|unhandled/i.test(l));
  expect(fatal, 'no fatal/uncaught log lines').toEqual([]);
}

/**
 * requireBroker, patient: other suites share this RabbitMQ and some make it
 * briefly unreachable; a suite still fails loudly if it never comes back.
 */
export async function waitForBroker(timeoutMs = 60_000): Promise<void> {
  let lastError: unknown;
  const reachable = () =>
    requireBroker().then(
      () => true,
      (err: unknown) => ((lastError = err), false),
    );
  await eventually(reachable, 'RabbitMQ to be reachable', { timeoutMs, intervalMs: 1000 }).catch((err: unknown) => {
    throw lastError ?? err;
  });
}

// ---------------------------------------------------------------- raw socket.io frames

/**
 * A socket.io v5-protocol client over a bare WebSocket, for frames a real
 * client library would never produce (deep nesting, malformed packets).
 */
export class RawSocket {
  readonly frames: string[] = [];
  private waiters: Array<() => void> = [];
  closed = false;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data, isBinary) => {
      const text = isBinary ? `<binary ${(data as Buffer).length}>` : data.toString();
      if (text === '2') ws.send('3'); // engine.io ping → pong
      this.frames.push(text);
      this.waiters.splice(0).forEach((w) => w());
    });
    ws.on('close', () => {
      this.closed = true;
      this.waiters.splice(0).forEach((w) => w());
    });
    ws.on('error', () => undefined);
  }

  /** Opens the transport and joins the default namespace with `auth`. */
  static async connect(url: string, auth?: unknown): Promise<RawSocket> {
    const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/socket.io/?EIO=4&transport=websocket`);
    const raw = new RawSocket(ws); // listening before 'open': the engine.io open packet can come in the same tick
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    await raw.next((f) => f.startsWith('0{'), 'engine.io open');
    ws.send(auth === undefined ? '40' : `40${JSON.stringify(auth)}`);
    const joined = await raw.next((f) => f.startsWith('40') || f.startsWith('44'), 'socket.io connect');
    if (!joined.startsWith('40')) throw new Error(`raw connect refused: ${joined}`);
    return raw;
  }

  send(frame: string | Buffer): void {
    this.ws.send(frame);
  }

  /** The first frame (already here or still to come) matching `predicate`. */
  async next(predicate: (frame: string) => boolean, what: string, timeoutMs = 10_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.frames.find(predicate);
      if (hit !== undefined) return hit;
      if (this.closed) throw new Error(`connection closed while waiting for ${what}; frames: ${this.frames.join(' | ').slice(0, 500)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; frames: ${this.frames.join(' | ').slice(0, 500)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => (clearTimeout(timer), resolve()));
      });
    }
  }

  /** Sends `42<ackId>[event, ...args]` with pre-encoded JSON args; resolves with the parsed ack args. */
  async emitRaw(ackId: number, event: string, encodedArgs: string): Promise<unknown[]> {
    this.send(`42${ackId}[${JSON.stringify(event)}${encodedArgs === '' ? '' : `,${encodedArgs}`}]`);
    const frame = await this.next((f) => f.startsWith(`43${ackId}[`), `ack ${ackId}`);
    return JSON.parse(frame.slice(`43${ackId}`.length)) as unknown[];
  }

  close(): void {
    this.ws.close();
  }
}
