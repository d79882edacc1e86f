import { ErrorCode, type JsonObject } from '@topicgate/shared';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  createClient,
  type Client,
  type ClientOptions,
  type ConnectionState,
  type Message,
  type TopicgateError,
} from '../src/index.js';
import { FakeGateway, freshToken, makeToken, tokenClaims } from './fake-gateway.js';
import { ticks, until } from './helpers.js';

interface Topics {
  'builds.{id}.started': { id: number };
  'builds.{id}.finished': { id: number; result: string };
  'logs.{id}.append': { first: number; lines: string[] };
}

const clients: Client<any>[] = [];
afterEach(() => {
  for (const client of clients.splice(0)) client.close();
  vi.useRealTimers();
});

/** Far longer than any retry or reconnect delay these tests configure (20 ms at most): on a fake clock, no wait at all. */
const EVERY_RETRY_PERIOD = 1_000;

function newClient(gateway: FakeGateway, options: Partial<ClientOptions> = {}): Client<Topics> {
  const client = createClient<Topics>({
    url: 'http://gateway.test',
    token: freshToken(),
    io: gateway.io,
    reconnectDelay: 5,
    reconnectDelayMax: 20,
    resubscribeDelay: 5,
    resubscribeDelayMax: 20,
    ...options,
  });
  clients.push(client);
  return client;
}

async function connected(client: Client<any>): Promise<void> {
  await until(() => client.state === 'connected', 'the client to connect');
}

function subscribedCount(gateway: FakeGateway): number {
  return gateway.subscriptions().length;
}

describe('subscribing', () => {
  it('delivers a batch that arrives in the same tick as the subscribe ack', async () => {
    const gateway = new FakeGateway();
    gateway.hooks.afterAck = () => gateway.publish('builds.1.finished', { id: 1, result: 'success' });
    const client = newClient(gateway);
    const got: Message[] = [];
    client.subscribe('builds.*.finished', (m) => got.push(m));
    await until(() => got.length === 1, 'the first batch');
    expect(got[0]).toMatchObject({ key: 'builds.1.finished', body: { id: 1, result: 'success' }, seq: 1 });
  });

  it('delivers a batch that arrives before the subscribe ack, once the ack names its subscription', async () => {
    const gateway = new FakeGateway();
    gateway.hooks.beforeAck = () => {
      gateway.publish('builds.1.started', { id: 1 });
      gateway.publish('builds.1.finished', { id: 1, result: 'failure' });
    };
    const client = newClient(gateway);
    const keys: string[] = [];
    const sub = client.subscribe('builds.1.*', (m) => keys.push(`${m.key}@${sub.state}`));
    await until(() => keys.length === 2, 'both messages');
    expect(keys).toEqual(['builds.1.started@subscribed', 'builds.1.finished@subscribed']);
  });

  it('makes a subscription requested before the connection once, when connected', async () => {
    const gateway = new FakeGateway();
    const client = newClient(gateway, { autoConnect: false });
    const sub = client.subscribe('builds.#');
    await ticks();
    expect(gateway.received).toEqual([]);
    client.connect();
    await until(() => sub.state === 'subscribed', 'the subscription');
    await gateway.settle();
    expect(gateway.received.filter(([event]) => event === 'subscribe')).toHaveLength(1);
    expect(subscribedCount(gateway)).toBe(1);
  });

  it('delivers messages in order with their concrete keys, to the handler and to message listeners', async () => {
    const gateway = new FakeGateway();
    const client = newClient(gateway);
    const fromHandler: string[] = [];
    const fromListener: string[] = [];
    const sub = client.subscribe('builds.#', (m) => fromHandler.push(m.key));
    sub.on('message', (m) => fromListener.push(m.key));
    await until(() => sub.state === 'subscribed', 'the subscription');
    for (let i = 1; i <= 5; i++) gateway.publish(`builds.${i}.started`, { id: i });
    await until(() => fromHandler.length === 5, 'five messages');
    expect(fromHandler).toEqual(['builds.1.started', 'builds.2.started', 'builds.3.started', 'builds.4.started', 'builds.5.started']);
    expect(fromListener).toEqual(fromHandler);
  });

  it('tells which declared topic a message of a wildcard subscription belongs to', async () => {
    const gateway = new FakeGateway();
    const client = newClient(gateway);
    const results: string[] = [];
    const sub = client.subscribe('builds.#', (m) => {
      if (client.isTopic(m, 'builds.{id}.finished')) results.push(m.body.result);
      else if (client.isTopic(m, 'builds.{id}.started')) results.push(`started ${m.body.id}`);
    });
    await until(() => sub.state === 'subscribed', 'the subscription');
    gateway.publish('builds.1.started', { id: 1 });
    gateway.publish('builds.1.steps.2.finished', { id: 1, result: 'not a build' });
    gateway.publish('builds.1.finished', { id: 1, result: 'success' });
    await until(() => results.length === 2, 'two messages');
    expect(results).toEqual(['started 1', 'success']);
  });

  it('throws at once on an invalid pattern, before anything reaches the gateway', () => {
    const client = newClient(new FakeGateway());
    expect(() => client.subscribe('builds..x' as never)).toThrow(TypeError);
    expect(() => client.subscribe('builds.a*' as never)).toThrow(/invalid word/);
  });
});

describe('unsubscribing', () => {
  it('deletes the gateway subscription and delivers nothing after the call', async () => {
    const gateway = new FakeGateway();
    const client = newClient(gateway);
    const got: Message[] = [];
    const sub = client.subscribe('builds.*.finished', (m) => got.push(m));
    await until(() => sub.state === 'subscribed', 'the subscription');
    gateway.publish('builds.1.finished', { id: 1, result: 'success' });
    // Unsubscribing while that message is on the wire: it must not reach the handler.
    sub.unsubscribe();
    await gateway.settle();
    expect(got).toEqual([]);
    expect(subscribedCount(gateway)).toBe(0);
    expect(sub.state).toBe('unsubscribed');
  });

  it('leaves nothing on the gateway when unsubscribe comes before the ack', async () => {
    const gateway = new FakeGateway();
    let release!: () => void;
    gateway.hooks.delaySubscribeAck = () => new Promise<void>((resolve) => (release = resolve));
    const client = newClient(gateway);
    const got: Message[] = [];
    const sub = client.subscribe('builds.#', (m) => got.push(m));
    await until(() => gateway.received.length === 1, 'the subscribe request');
    sub.unsubscribe();
    release();
    await gateway.settle();
    expect(subscribedCount(gateway)).toBe(0);
    gateway.publish('builds.1.started', { id: 1 });
    await gateway.settle();
    expect(got).toEqual([]);
  });

  it('is a bound function, usable as a cleanup callback', async () => {
    const gateway = new FakeGateway();
    const client = newClient(gateway);
    const { unsubscribe } = client.subscribe('builds.#');
    await until(() => subscribedCount(gateway) === 1, 'the subscription');
    unsubscribe();
    await gateway.settle();
    expect(subscribedCount(gateway)).toBe(0);
  });
});

describe('reconnecting', () => {
  it('makes every subscription again after a reconnect and reports it as a resync', async () => {
    const gateway = new FakeGateway();
    const client = newClient(gateway);
    const a = client.subscribe('builds.#');
    const b = client.subscribe('logs.*.append');
    const resyncs: string[] = [];
    a.on('resync', ({ reason }) => resyncs.push(`a:${reason}`));
    b.on('resync', ({ reason }) => resyncs.push(`b:${reason}`));
    await until(() => a.state === 'subscribed' && b.state === 'subscribed', 'both subscriptions');
    const before = [a.id, b.id];

    gateway.dropConnections();
    await until(() => a.state === 'subscribing', 'the disconnect');
    await until(() => a.state === 'subscribed' && b.state === 'subscribed', 'both subscriptions again');
    expect(resyncs.sort()).toEqual(['a:resubscribed', 'b:resubscribed']);
    expect([a.id, b.id]).not.toEqual(before);
    expect(subscribedCount(gateway)).toBe(2);

    const got: string[] = [];
    a.on('message', (m) => got.push(m.key));
    gateway.publish('builds.3.started', { id: 3 });
    await until(() => got.length === 1, 'a message after the reconnect');
  });

  it('does not duplicate subscriptions when the socket reconnects while a subscribe is in flight', async () => {
    const gateway = new FakeGateway();
    const client = newClient(gateway);
    let hold = true;
    gateway.hooks.delaySubscribeAck = () => (hold ? new Promise<void>(() => {}) : undefined);
    const sub = client.subscribe('builds.#');
    await until(() => gateway.received.length === 1, 'the first subscribe request');
    hold = false;
    gateway.dropConnections();
    await until(() => sub.state === 'subscribed', 'the subscription on the new socket');
    await gateway.settle();
    expect(subscribedCount(gateway)).toBe(1);
  });

  it('reports connection states: connecting, connected, connecting on loss, disconnected on request', async () => {
    const gateway = new FakeGateway();
    const states: ConnectionState[] = [];
    const client = newClient(gateway, { autoConnect: false });
    client.on('state', (state) => states.push(state));
    expect(client.state).toBe('disconnected');
    client.connect();
    await connected(client);
    gateway.online = false;
    gateway.dropConnections();
    await until(() => states.length >= 3, 'the loss');
    expect(client.state).toBe('connecting');
    gateway.online = true;
    await connected(client);
    client.disconnect();
    expect(states).toEqual(['connecting', 'connected', 'connecting', 'connected', 'disconnected']);
  });

  it('reconnects by itself after the gateway ended the socket (socket.io does not)', async () => {
    const gateway = new FakeGateway();
    const client = newClient(gateway);
    const sub = client.subscribe('builds.#');
    await until(() => sub.state === 'subscribed', 'the subscription');
    const reasons: string[] = [];
    client.on('disconnected', ({ reason }) => reasons.push(reason));
    gateway.kick();
    await until(() => reasons.length === 1, 'the disconnect');
    expect(reasons).toEqual(['io server disconnect']);
    await until(() => sub.state === 'subscribed' && client.state === 'connected', 'the reconnect');
  });

  it('keeps subscriptions across disconnect() and connect()', async () => {
    const gateway = new FakeGateway();
    const client = newClient(gateway);
    const sub = client.subscribe('builds.#');
    await until(() => sub.state === 'subscribed', 'the subscription');
    client.disconnect();
    expect(client.state).toBe('disconnected');
    expect(sub.state).toBe('subscribing');
    await gateway.settle();
    expect(subscribedCount(gateway)).toBe(0);
    client.connect();
    await until(() => sub.state === 'subscribed', 'the subscription again');
    expect(subscribedCount(gateway)).toBe(1);
  });
});

describe('lost messages', () => {
  it('reports a seq gap as a resync, before the message after the gap', async () => {
    const gateway = new FakeGateway();
    const client = newClient(gateway);
    const events: string[] = [];
    const sub = client.subscribe('builds.#', (m) => events.push(`message ${m.seq}`));
    sub.on('resync', ({ reason }) => events.push(`resync ${reason}`));
    await until(() => sub.state === 'subscribed', 'the subscription');
    gateway.publish('builds.1.started', { id: 1 });
    gateway.loseNext(2);
    gateway.publish('builds.2.started', { id: 2 });
    gateway.publish('builds.3.started', { id: 3 });
    gateway.publish('builds.4.started', { id: 4 });
    await until(() => events.length === 3, 'the events');
    expect(events).toEqual(['message 1', 'resync seq_gap', 'message 4']);
  });

  it("passes the gateway's resync notices on with their reason", async () => {
    const gateway = new FakeGateway();
    const client = newClient(gateway);
    const reasons: string[] = [];
    const sub = client.subscribe('builds.#');
    sub.on('resync', ({ reason }) => reasons.push(reason));
    await until(() => sub.state === 'subscribed', 'the subscription');
    gateway.resync('overflow');
    gateway.resync('reconnected');
    await until(() => reasons.length === 2, 'two resyncs');
    expect(reasons).toEqual(['overflow', 'reconnected']);
  });
});

describe('the gateway ending or refusing subscriptions', () => {
  it('ends a subscription for good on unsubscribed(forbidden)', async () => {
    vi.useFakeTimers();
    const gateway = new FakeGateway();
    const client = newClient(gateway);
    const sub = client.subscribe('builds.#');
    const ended: string[] = [];
    sub.on('unsubscribed', ({ reason }) => ended.push(reason));
    await until(() => sub.state === 'subscribed', 'the subscription');
    gateway.end(gateway.subscriptions()[0]!, 'forbidden');
    await until(() => ended.length === 1, 'the end');
    expect(ended).toEqual(['forbidden']);
    expect(sub.state).toBe('unsubscribed');
    await vi.advanceTimersByTimeAsync(EVERY_RETRY_PERIOD);
    expect(subscribedCount(gateway)).toBe(0);
  });

  it('makes a subscription again after unsubscribed(queue_deleted), with a resync', async () => {
    const gateway = new FakeGateway();
    const client = newClient(gateway);
    const sub = client.subscribe('builds.#');
    const reasons: string[] = [];
    sub.on('resync', ({ reason }) => reasons.push(reason));
    await until(() => sub.state === 'subscribed', 'the subscription');
    const first = sub.id;
    gateway.end(gateway.subscriptions()[0]!, 'queue_deleted');
    await until(() => reasons.length === 1, 'the resync');
    expect(reasons).toEqual(['restarted']);
    expect(sub.state).toBe('subscribed');
    expect(sub.id).not.toBe(first);
    expect(subscribedCount(gateway)).toBe(1);
  });

  it("ends a refused subscription with the gateway's error", async () => {
    const gateway = new FakeGateway();
    gateway.hooks.refuseSubscribe = () => ({ code: ErrorCode.Forbidden, message: 'token does not allow logs.#' });
    const client = newClient(gateway);
    const clientErrors: TopicgateError[] = [];
    client.on('error', (e) => clientErrors.push(e));
    const sub = client.subscribe('logs.*.append');
    const ended = new Promise<{ reason: string; error?: TopicgateError }>((resolve) => sub.on('unsubscribed', resolve));
    const { reason, error } = await ended;
    expect(reason).toBe('rejected');
    expect(error?.code).toBe('forbidden');
    expect(error?.message).toBe('subscribing to "logs.*.append" was refused: token does not allow logs.#');
    // Also on the client, for applications that never listen to a subscription's events.
    expect(clientErrors.map((e) => [e.code, e.message])).toEqual([[error!.code, error!.message]]);
  });

  it('retries a subscription refused as unavailable until the broker is back', async () => {
    vi.useFakeTimers();
    const gateway = new FakeGateway();
    let refusals = 3;
    gateway.hooks.refuseSubscribe = () =>
      refusals-- > 0 ? { code: ErrorCode.Unavailable, message: 'broker down' } : null;
    const client = newClient(gateway);
    const errors: string[] = [];
    const sub = client.subscribe('builds.#');
    sub.on('error', (e) => errors.push(e.code));
    await until(() => sub.state === 'subscribed', 'the subscription');
    expect(errors).toEqual(['unavailable', 'unavailable', 'unavailable']);
    expect(subscribedCount(gateway)).toBe(1);
  });

  it('does not retry a subscription the broker refused for good; it ends, rejected', async () => {
    vi.useFakeTimers();
    const gateway = new FakeGateway();
    let asked = 0;
    gateway.hooks.refuseSubscribe = () => (asked++, { code: ErrorCode.Refused, message: 'the broker refused the subscription' });
    const client = newClient(gateway);
    const sub = client.subscribe('builds.#');
    let ended: { reason: string; error?: TopicgateError } | undefined;
    sub.on('unsubscribed', (context) => (ended = context));
    await until(() => ended !== undefined, 'the end');
    const { reason, error } = ended!;
    expect(reason).toBe('rejected');
    expect(error?.code).toBe('refused');
    await vi.advanceTimersByTimeAsync(EVERY_RETRY_PERIOD);
    expect(asked).toBe(1);
    expect(sub.state).toBe('unsubscribed');
  });
});

describe('tokens', () => {
  // Token lifetimes, refresh schedules and reconnect backoff all run on the fake clock (Date included).
  beforeEach(() => {
    vi.useFakeTimers();
  });

  it("surfaces a refused handshake as an unauthorized error with the gateway's message", async () => {
    const gateway = new FakeGateway();
    const expired = makeToken({ sub: 'x', exp: Math.floor(Date.now() / 1000) - 10 });
    const client = newClient(gateway, { token: expired });
    const errors: TopicgateError[] = [];
    client.on('error', (e) => errors.push(e));
    await until(() => errors.length === 1, 'the error');
    expect(errors[0]!.code).toBe(ErrorCode.Unauthorized);
    expect(errors[0]!.message).toBe('jwt expired');
    // A static token would be refused again: the client stops.
    expect(client.state).toBe('disconnected');
    await vi.advanceTimersByTimeAsync(EVERY_RETRY_PERIOD);
    expect(gateway.handshakeTokens).toHaveLength(1);
  });

  it('fetches a token with getToken before connecting, and a new one after a refusal', async () => {
    const gateway = new FakeGateway();
    const expired = makeToken({ sub: 'x', exp: Math.floor(Date.now() / 1000) - 10 });
    const tokens = [expired, freshToken(3600, 'second')];
    let calls = 0;
    const client = newClient(gateway, { token: undefined, getToken: async () => tokens[calls++]! });
    const errors: string[] = [];
    client.on('error', (e) => errors.push(e.code));
    await connected(client);
    expect(calls).toBe(2);
    expect(errors).toEqual(['unauthorized']);
    expect(gateway.handshakeTokens.map((t) => (t === undefined ? t : tokenClaims(t)['sub']))).toEqual(['x', 'second']);
  });

  it("sends a fresh token with refresh shortly before the old one's exp", async () => {
    const gateway = new FakeGateway();
    let n = 0;
    // One-second tokens: the refresh falls due after half their life.
    const client = newClient(gateway, { token: undefined, getToken: async () => freshToken(1, `t${++n}`) });
    await connected(client);
    await until(() => gateway.refreshTokens.length >= 1, 'a refresh', 3_000);
    expect(tokenClaims(gateway.refreshTokens[0]!)['sub']).toBe('t2');
    expect([...gateway.connections][0]!.token).toBe(gateway.refreshTokens[0]);
  });

  it('reports a refused refresh and tries again with another token', async () => {
    let refuse = true;
    const gateway = new FakeGateway({
      authorize: (token) => (token !== undefined && tokenClaims(token)['sub'] === 'bad' && refuse ? 'revoked' : null),
    });
    let n = 0;
    const client = newClient(gateway, {
      token: undefined,
      getToken: async () => freshToken(1, n++ === 1 ? 'bad' : `good${n}`),
    });
    const errors: TopicgateError[] = [];
    client.on('error', (e) => errors.push(e));
    await connected(client);
    await until(() => errors.length === 1, 'the refused refresh', 3_000);
    expect(errors[0]!.code).toBe('unauthorized');
    expect(errors[0]!.message).toBe('revoked');
    refuse = false;
    // Not at once: the next try waits the refresh backoff, at least half of its first second
    // (`until` may have run the clock up to 2 ms past the refusal).
    await vi.advanceTimersByTimeAsync(490);
    expect(gateway.refreshTokens).toHaveLength(1);
    await until(() => gateway.refreshTokens.length >= 2, 'another refresh', 5_000);
    expect(client.state).toBe('connected');
  });

  it('counts a given token\'s life from its iat: one minted long ago is replaced before the first handshake', async () => {
    const gateway = new FakeGateway();
    const now = Math.floor(Date.now() / 1000);
    const stale = makeToken({ sub: 'embedded in the page', iat: now - 8, exp: now + 2 }); // 10 s token, 8 s old
    newClient(gateway, { token: stale, getToken: async () => freshToken(3600, 'fresh') });
    await until(() => gateway.handshakeTokens.length === 1, 'the handshake');
    expect(tokenClaims(gateway.handshakeTokens[0]!)['sub']).toBe('fresh');
  });

  it('reconnects with the refreshed token after the gateway ended the socket', async () => {
    const gateway = new FakeGateway();
    // 2 s: `iat` is whole seconds, so the token's life as this browser counts it is 1–2 s.
    const first = freshToken(2, 'first');
    const client = newClient(gateway, { token: first, getToken: async () => freshToken(3600, 'second') });
    const sub = client.subscribe('builds.#');
    await until(() => gateway.refreshTokens.length === 1, 'the refresh', 3_000);
    // What the gateway does when a token expires without a refresh.
    gateway.kick();
    await until(() => gateway.handshakeTokens.length === 2 && sub.state === 'subscribed', 'the second handshake');
    expect(gateway.handshakeTokens.map((t) => tokenClaims(t!)['sub'])).toEqual(['first', 'second']);
  });

  it('asks getToken again at a reconnect when the token in hand is due for renewal', async () => {
    const gateway = new FakeGateway();
    let n = 0;
    const client = newClient(gateway, { token: undefined, getToken: async () => freshToken(3600, `t${++n}`) });
    await connected(client);
    client.disconnect();
    client.connect();
    await connected(client);
    // Still good for an hour: no new token.
    expect(n).toBe(1);
    // One-second tokens are due for renewal after half a second.
    const renewing = newClient(gateway, { token: undefined, getToken: async () => freshToken(1, `r${++n}`) });
    await connected(renewing);
    renewing.disconnect();
    await vi.advanceTimersByTimeAsync(600);
    renewing.connect();
    await connected(renewing);
    expect(n).toBe(3);
  });

  it('reports a failing getToken as token_unavailable and keeps trying', async () => {
    const gateway = new FakeGateway();
    let fail = 2;
    const client = newClient(gateway, {
      token: undefined,
      getToken: async () => {
        if (fail-- > 0) throw new Error('auth server down');
        return freshToken();
      },
    });
    const errors: string[] = [];
    client.on('error', (e) => errors.push(e.code));
    await connected(client);
    expect(errors.filter((c) => c === 'token_unavailable')).toHaveLength(2);
  });
});

describe('revocation (an operator ended the subject\'s access on every gateway)', () => {
  it('surfaces revoked as an error with the gateway\'s message, then reconnects with a new token from getToken', async () => {
    const gateway = new FakeGateway();
    let n = 0;
    const client = newClient(gateway, { token: undefined, getToken: async () => freshToken(3600, `t${++n}`) });
    const errors: TopicgateError[] = [];
    const disconnects: string[] = [];
    client.on('error', (e) => errors.push(e));
    client.on('disconnected', ({ reason }) => disconnects.push(reason));
    const sub = client.subscribe('builds.#');
    await until(() => sub.state === 'subscribed', 'the subscription');
    gateway.revoke('access revoked by an operator (leaked token)');
    await until(() => errors.length === 1, 'the revoked error');
    expect(errors[0]!.code).toBe('revoked');
    expect(errors[0]!.message).toBe('access revoked by an operator (leaked token)');
    expect(disconnects).toEqual(['revoked']);
    // The revoked token is never offered again: the next handshake carries a new one.
    await until(() => client.state === 'connected' && sub.state === 'subscribed', 'the reconnect');
    expect(gateway.handshakeTokens.map((t) => tokenClaims(t!)['sub'])).toEqual(['t1', 't2']);
    expect(errors.map((e) => e.code)).toEqual(['revoked']);
  });

  it('with a static token, stops: that token would be refused again', async () => {
    vi.useFakeTimers();
    const gateway = new FakeGateway();
    const client = newClient(gateway);
    const errors: string[] = [];
    client.on('error', (e) => errors.push(e.code));
    await connected(client);
    gateway.revoke();
    await until(() => client.state === 'disconnected', 'the client to stop');
    await vi.advanceTimersByTimeAsync(EVERY_RETRY_PERIOD);
    expect(errors).toEqual(['revoked']);
    expect(gateway.handshakeTokens).toHaveLength(1);
  });
});

describe('sources', () => {
  it('is ready only when every pattern is subscribed, and resyncs only after that', async () => {
    const gateway = new FakeGateway();
    let release!: () => void;
    gateway.hooks.delaySubscribeAck = (pattern) =>
      pattern === 'logs.*.append' ? new Promise<void>((resolve) => (release = resolve)) : undefined;
    const client = newClient(gateway);
    const events: string[] = [];
    const close = client.source(['builds.#', 'logs.*.append']).open({
      ready: () => events.push('ready'),
      message: (m: Message<string, unknown>) => events.push(m.key),
      resync: (reason) => events.push(`resync ${reason}`),
      error: () => {},
    });
    await until(() => subscribedCount(gateway) === 1, 'the first subscription');
    gateway.resync('overflow');
    await gateway.settle();
    expect(events).toEqual([]);
    release();
    await until(() => events.length === 1, 'ready');
    gateway.resync('overflow');
    gateway.publish('logs.1.append', { first: 0, lines: ['a'] } as JsonObject);
    await until(() => events.length === 4, 'resyncs and a message');
    expect(events).toEqual(['ready', 'resync overflow', 'resync overflow', 'logs.1.append']);
    close();
    await gateway.settle();
    expect(subscribedCount(gateway)).toBe(0);
  });
});

describe('closing', () => {
  it('ends every subscription and the connection', async () => {
    const gateway = new FakeGateway();
    const client = newClient(gateway);
    const a = client.subscribe('builds.#');
    const ended: string[] = [];
    a.on('unsubscribed', ({ reason }) => ended.push(reason));
    await until(() => a.state === 'subscribed', 'the subscription');
    client.close();
    expect(ended).toEqual(['closed']);
    expect(client.state).toBe('disconnected');
    await gateway.settle();
    expect(gateway.connections.size).toBe(0);
    expect(() => client.subscribe('builds.#')).toThrow(/closed/);
  });

  it('closes the views made on it, which then stop loading', async () => {
    vi.useFakeTimers();
    const gateway = new FakeGateway();
    const client = newClient(gateway);
    let loads = 0;
    const failing = async (): Promise<never> => {
      loads++;
      throw new Error('HTTP 503');
    };
    const builds = client.liveCollection({ pattern: 'builds.*.started', load: failing, retryDelay: 1, retryDelayMax: 1 });
    const tail = client.logTail({ pattern: 'logs.1.append', load: failing, retryDelay: 1, retryDelayMax: 1 });
    builds.on('error', () => undefined);
    tail.on('error', () => undefined);
    await until(() => loads >= 4, 'the views to retry their loads');
    client.close();
    expect(builds.status).toBe('closed');
    expect(tail.status).toBe('closed');
    const after = loads;
    await vi.advanceTimersByTimeAsync(EVERY_RETRY_PERIOD); // many retry periods (retryDelayMax is 1 ms): none may run
    expect(loads).toBe(after);
  });
});
