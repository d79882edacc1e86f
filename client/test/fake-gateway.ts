/**
 * FakeGateway: an in-process topicgate gateway speaking protocol v1, plus
 * fake socket.io-client sockets that talk to it, so client logic is tested
 * without a network. Pass `gateway.io` as `ClientOptions.io`.
 *
 * Fidelity that the tests rely on:
 * - Packets travel through one FIFO "wire" flushed on a macrotask: whatever
 *   the gateway sends in one step (an ack, then a batch) reaches the client in
 *   the same task, as frames read from one TCP segment do. The trap of
 *   docs/protocol.md §14.1 is reproduced by publishing from `hooks.afterAck`
 *   (batch right after the ack: what the real gateway does with messages
 *   that reach a queue while it is declared) or `hooks.beforeAck` (batch
 *   before it: allowed by §8.6, though today's gateway never sends it).
 * - The fake socket behaves like socket.io-client 4.x where the SDK cares:
 *   `auth` may be a callback, called on every handshake; a refused handshake
 *   (`connect_error` with `data`) or a server-side disconnect
 *   (`io server disconnect`) leave `active === false` and nothing reconnects
 *   by itself; a transport close reconnects after `reconnectionDelay`;
 *   emits made while disconnected are buffered and sent on the next connect;
 *   ack callbacks pending at a disconnect are dropped without a call.
 *
 * The parts of the protocol both the fake and the real gateway implement are
 * checked against each other by the contract in gateway-contract.ts (run on
 * the fake by gateway-contract.fake.test.ts, on a real gateway by
 * server/test/gateway/gateway-contract.real.test.ts): change the fake's
 * protocol behaviour there first.
 *
 * Extending it:
 * - A new client → server event: add a case to `FakeConnection.receive` and
 *   answer through `ack(…)`.
 * - A new server → client event or notice: add a method to `FakeGateway` that
 *   calls `connection.send(event, payload)` for the connections concerned.
 * - A new fault: add a method to `FakeGateway` (see `dropConnections`, `kick`,
 *   `loseNext`) and, if the client must see it differently, a method on
 *   `FakeSocket` that the gateway calls through `wire`.
 */
import {
  canonicalPattern,
  ErrorCode,
  patternCostError,
  patternError,
  topicMatches,
  type Delivery,
  type JsonObject,
  type ProtocolError,
  type ResyncReason,
  type UnsubscribedReason,
} from '@topicgate/shared';
import type { SocketFactory, SocketLike } from '../src/index.js';

type Listener = (...args: any[]) => void;
type Ack = (...args: any[]) => void;

export interface FakeSubscription {
  readonly id: string;
  readonly pattern: string;
  readonly connection: FakeConnection;
  seq: number;
}

export interface GatewayHooks {
  /** Runs when a subscription exists but before its ack is sent: a publish here reaches the client before the ack. */
  beforeAck?(sub: FakeSubscription): void;
  /** Runs right after the ack is sent: a publish here arrives in the same tick as the ack. */
  afterAck?(sub: FakeSubscription): void;
  /** Refuses a subscribe with this error, or lets it through with null. */
  refuseSubscribe?(pattern: string, connection: FakeConnection): ProtocolError | null;
  /** Holds the subscribe ack back: resolve the returned promise to send it. */
  delaySubscribeAck?(pattern: string): Promise<void> | undefined;
}

export interface FakeGatewayOptions {
  /** Returns why a token is refused, or null to accept it. Default: accepts any token that has not expired. */
  authorize?: (token: string | undefined) => string | null;
  /**
   * Returns why `token` does not allow `pattern` (a subscribe is refused
   * `forbidden`; after a refresh, a live subscription ends with `unsubscribed
   * forbidden`), or null. Default: every token allows every pattern.
   */
  allows?: (token: string | undefined, pattern: string) => string | null;
  /** Subscriptions per socket (`TOPICGATE_MAX_SUBSCRIPTIONS`). Default: no limit. */
  maxSubscriptions?: number;
  /**
   * Refuse a refresh whose token has another `sub` than the connection's, as
   * the gateway does (docs/protocol.md §4.3). Off by default because SDK tests
   * written before it refresh with tokens of varying subs.
   */
  sameSubOnRefresh?: boolean;
}

/** A JWT-shaped token the fake (and the SDK's exp decoding) can read; the signature is not checked. */
export function makeToken(claims: { sub?: string; exp?: number; iat?: number; [k: string]: unknown }): string {
  const b64 = (value: unknown) =>
    btoa(JSON.stringify(value)).replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
  return `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}.c2ln`;
}

export function tokenClaims(token: string): Record<string, unknown> {
  const part = (token.split('.')[1] ?? '').replace(/-/g, '+').replace(/_/g, '/');
  return JSON.parse(atob(part + '='.repeat((4 - (part.length % 4)) % 4))) as Record<string, unknown>;
}

/** A token for `sub` valid for `seconds` from now. */
export function freshToken(seconds = 3600, sub = 'tester'): string {
  const iat = Math.floor(Date.now() / 1000);
  return makeToken({ sub, iat, exp: iat + seconds });
}

function defaultAuthorize(token: string | undefined): string | null {
  if (token === undefined) return 'no token';
  let claims: Record<string, unknown>;
  try {
    claims = tokenClaims(token);
  } catch {
    return 'jwt malformed';
  }
  if (typeof claims['exp'] === 'number' && claims['exp'] * 1000 <= Date.now()) return 'jwt expired';
  return null;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function subOf(token: string | undefined): unknown {
  if (token === undefined) return undefined;
  try {
    return tokenClaims(token)['sub'];
  } catch {
    return undefined;
  }
}

/** Round-trips a payload through JSON, as the network would: no shared references between the two sides. */
function wireCopy<T>(value: T): T {
  return value === undefined ? value : (JSON.parse(JSON.stringify(value)) as T);
}

export class FakeGateway {
  /** Set false to make handshakes fail like an unreachable host (`connect_error` without data, then retries). */
  online = true;
  readonly hooks: GatewayHooks = {};
  readonly connections = new Set<FakeConnection>();
  readonly sockets: FakeSocket[] = [];
  /** Every token a handshake carried, in order. */
  readonly handshakeTokens: (string | undefined)[] = [];
  /** Every token a `refresh` carried, in order. */
  readonly refreshTokens: string[] = [];
  /** Every client → server event, in order: [event, payload]. */
  readonly received: [string, unknown][] = [];
  readonly authorize: (token: string | undefined) => string | null;
  readonly allows: (token: string | undefined, pattern: string) => string | null;
  readonly maxSubscriptions: number;
  readonly sameSubOnRefresh: boolean;
  /** Tokens of revoked connections (`revoke`): refused at every later handshake. */
  readonly revokedTokens = new Set<string>();

  #queue: (() => void)[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  #nextId = 1;
  #lose = 0;

  constructor(options: FakeGatewayOptions = {}) {
    this.authorize = options.authorize ?? defaultAuthorize;
    this.allows = options.allows ?? (() => null);
    this.maxSubscriptions = options.maxSubscriptions ?? Infinity;
    this.sameSubOnRefresh = options.sameSubOnRefresh ?? false;
  }

  /** Pass as `ClientOptions.io`. */
  readonly io: SocketFactory = (_url, options) => {
    const socket = new FakeSocket(this, options as FakeSocketOptions);
    this.sockets.push(socket);
    return socket;
  };

  /** Puts a packet on the wire. Everything queued before a flush is delivered in that one task. */
  wire(deliver: () => void): void {
    this.#queue.push(deliver);
    this.#timer ??= setTimeout(() => this.#flush(), 0);
  }

  #flush(): void {
    this.#timer = undefined;
    const batch = this.#queue;
    this.#queue = [];
    for (const deliver of batch) deliver();
  }

  /** Resolves once the wire is empty and has stayed so for a few tasks (answers to answers included). */
  async settle(): Promise<void> {
    for (let quiet = 0; quiet < 3; ) {
      await new Promise((resolve) => setTimeout(resolve, 0));
      quiet = this.#queue.length === 0 && this.#timer === undefined ? quiet + 1 : 0;
    }
  }

  nextSubscriptionId(): string {
    return `sub-${this.#nextId++}`;
  }

  /** Every live subscription on every connection. */
  subscriptions(): FakeSubscription[] {
    return [...this.connections].flatMap((c) => [...c.subscriptions.values()]);
  }

  /**
   * Publishes like the broker would: one `messages` batch per connection with
   * every matching subscription's delivery, seq advancing per subscription.
   */
  publish(key: string, body: JsonObject): void {
    for (const connection of this.connections) {
      const batch: Delivery[] = [];
      for (const sub of connection.subscriptions.values()) {
        if (!topicMatches(sub.pattern, key)) continue;
        sub.seq++;
        if (this.#lose > 0) {
          this.#lose--;
          continue;
        }
        batch.push({ id: sub.id, key, body, seq: sub.seq });
      }
      if (batch.length > 0) connection.send('messages', batch);
    }
  }

  /** The next `n` deliveries are lost between broker and socket, silently: only `seq` shows it. */
  loseNext(n: number): void {
    this.#lose += n;
  }

  /** Sends `resync` for a subscription (or for every one). */
  resync(reason: ResyncReason, sub?: FakeSubscription): void {
    for (const s of sub === undefined ? this.subscriptions() : [sub]) s.connection.send('resync', { id: s.id, reason });
  }

  /** Ends a subscription from the gateway side, with `unsubscribed`. */
  end(sub: FakeSubscription, reason: UnsubscribedReason): void {
    sub.connection.subscriptions.delete(sub.id);
    sub.connection.send('unsubscribed', { id: sub.id, reason });
  }

  /** The gateway shuts down (SIGTERM): `unsubscribed { reason: "shutdown" }` for every subscription, then `io server disconnect`. */
  shutdown(): void {
    for (const connection of [...this.connections]) {
      for (const sub of [...connection.subscriptions.values()]) this.end(sub, 'shutdown');
      connection.close('io server disconnect');
    }
  }

  /** Every socket loses its transport (network blip): socket.io reconnects on its own. */
  dropConnections(): void {
    for (const connection of [...this.connections]) connection.close('transport close');
  }

  /** The gateway disconnects every socket (`io server disconnect`, as on token expiry): nothing reconnects by itself. */
  kick(): void {
    for (const connection of [...this.connections]) connection.close('io server disconnect');
  }

  /**
   * An operator revoked the subject (`topicgate revoke`): each socket whose
   * token has this `sub` (every socket when omitted) gets `revoked`, then is
   * disconnected (`io server disconnect`); tokens it held are refused from now on.
   */
  revoke(message = 'access revoked by an operator', sub?: string): void {
    for (const connection of [...this.connections]) {
      if (sub !== undefined && (connection.token === undefined || tokenClaims(connection.token)['sub'] !== sub)) continue;
      if (connection.token !== undefined) this.revokedTokens.add(connection.token);
      connection.send('revoked', { code: 'revoked', message });
      connection.close('io server disconnect');
    }
  }
}

/** The gateway's side of one connected socket. */
export class FakeConnection {
  readonly subscriptions = new Map<string, FakeSubscription>();
  alive = true;
  /** Subscribes accepted but not yet acknowledged: they count against the limit, as on the gateway. */
  #declaring = 0;

  constructor(
    readonly gateway: FakeGateway,
    readonly socket: FakeSocket,
    public token: string | undefined,
  ) {}

  /** Server → client event. */
  send(event: string, payload: unknown): void {
    if (!this.alive) return;
    const copy = wireCopy(payload);
    this.gateway.wire(() => this.socket.receiveEvent(this, event, copy));
  }

  close(reason: 'transport close' | 'io server disconnect'): void {
    if (!this.alive) return;
    this.alive = false;
    this.gateway.connections.delete(this);
    this.gateway.wire(() => this.socket.lost(this, reason));
  }

  /** Client → server event (already off the wire). */
  receive(event: string, payload: any, ackId: number | undefined): void {
    if (!this.alive) return;
    this.gateway.received.push([event, payload]);
    const ack = (result: unknown) => {
      if (ackId === undefined || !this.alive) return;
      const copy = wireCopy(result);
      this.gateway.wire(() => this.socket.receiveAck(this, ackId, copy));
    };
    switch (event) {
      case 'subscribe':
        this.#subscribe(payload, ack);
        return;
      case 'unsubscribe': {
        const id = isRecord(payload) ? payload['id'] : undefined;
        if (typeof id !== 'string') ack({ ok: false, error: { code: ErrorCode.BadRequest, message: 'unsubscribe expects an object { id: string } with the id from the subscribe ack' } });
        else if (this.subscriptions.delete(id)) ack({ ok: true });
        else ack({ ok: false, error: { code: ErrorCode.UnknownSubscription, message: `no subscription "${id}" on this connection` } });
        return;
      }
      case 'refresh':
        this.#refresh(payload, ack);
        return;
      case 'received':
        // The fake grants no resume, so no id is resumable: the real gateway ignores them all (docs/protocol.md §15.3).
        if (isRecord(payload) && isRecord(payload['seqs'])) ack({ ok: true });
        else ack({ ok: false, error: { code: ErrorCode.BadRequest, message: 'received expects an object { seqs: { [subscription id]: seq } }' } });
        return;
      default:
        ack({ ok: false, error: { code: ErrorCode.BadRequest, message: `unknown event "${event}"; protocol v1 has subscribe, unsubscribe, refresh, received` } });
    }
  }

  #refresh(payload: unknown, ack: (result: unknown) => void): void {
    const token = isRecord(payload) ? payload['token'] : undefined;
    this.gateway.refreshTokens.push(token as string);
    if (typeof token !== 'string') {
      ack({ ok: false, error: { code: ErrorCode.BadRequest, message: 'refresh expects an object { token: string }' } });
      return;
    }
    const refused = this.gateway.authorize(token) ?? (this.gateway.sameSubOnRefresh && subOf(token) !== subOf(this.token) ? 'a refreshed token must have the same sub as the connection\'s token' : null);
    if (refused !== null) {
      ack({ ok: false, error: { code: ErrorCode.Unauthorized, message: refused } });
      return;
    }
    this.token = token;
    // As the gateway does, before the ack: every live subscription is authorized again under the new token.
    for (const sub of [...this.subscriptions.values()]) {
      if (this.gateway.allows(token, sub.pattern) !== null) this.gateway.end(sub, 'forbidden');
    }
    ack({ ok: true });
  }

  #subscribe(payload: unknown, ack: (result: unknown) => void): void {
    // The gateway's checks, in its order (docs/protocol.md §4.1).
    const expected = 'subscribe expects an object { pattern: string }';
    if (!isRecord(payload)) return ack({ ok: false, error: { code: ErrorCode.BadRequest, message: expected } });
    const pattern = payload['pattern'];
    if (typeof pattern !== 'string') return ack({ ok: false, error: { code: ErrorCode.BadRequest, message: `${expected}; "pattern" is missing or not a string` } });
    const invalid = patternError(pattern) ?? patternCostError(canonicalPattern(pattern));
    if (invalid !== null) {
      ack({ ok: false, error: { code: ErrorCode.InvalidPattern, message: invalid } });
      return;
    }
    if (this.subscriptions.size + this.#declaring >= this.gateway.maxSubscriptions) {
      ack({ ok: false, error: { code: ErrorCode.LimitExceeded, message: `at most ${this.gateway.maxSubscriptions} subscriptions per connection; unsubscribe from one first` } });
      return;
    }
    const forbidden = this.gateway.allows(this.token, pattern);
    if (forbidden !== null) {
      ack({ ok: false, error: { code: ErrorCode.Forbidden, message: forbidden } });
      return;
    }
    const refusal = this.gateway.hooks.refuseSubscribe?.(pattern, this) ?? null;
    if (refusal !== null) {
      ack({ ok: false, error: refusal });
      return;
    }
    const sub: FakeSubscription = { id: this.gateway.nextSubscriptionId(), pattern, connection: this, seq: 0 };
    const finish = () => {
      this.#declaring--;
      if (!this.alive) return;
      this.subscriptions.set(sub.id, sub);
      this.gateway.hooks.beforeAck?.(sub);
      ack({ ok: true, id: sub.id });
      this.gateway.hooks.afterAck?.(sub);
    };
    this.#declaring++;
    const delay = this.gateway.hooks.delaySubscribeAck?.(pattern);
    if (delay === undefined) finish();
    else void delay.then(finish);
  }
}

interface FakeSocketOptions {
  auth?: object | ((cb: (data: object) => void) => void);
  reconnection?: boolean;
  reconnectionDelay?: number;
}

/** The client's socket: the parts of socket.io-client's `Socket` that `SocketLike` names, with its semantics. */
export class FakeSocket implements SocketLike {
  connected = false;
  /** socket.io's `active`: the socket is trying to be connected. */
  active = false;
  /** Handshakes attempted. */
  attempts = 0;

  #listeners = new Map<string, Set<Listener>>();
  #acks = new Map<number, Ack>();
  #nextAck = 0;
  #sendBuffer: (() => void)[] = [];
  #connection: FakeConnection | undefined;
  #retry: ReturnType<typeof setTimeout> | undefined;

  constructor(
    readonly gateway: FakeGateway,
    readonly options: FakeSocketOptions,
  ) {}

  on(event: string, listener: Listener): this {
    let set = this.#listeners.get(event);
    if (set === undefined) this.#listeners.set(event, (set = new Set()));
    set.add(listener);
    return this;
  }

  #fire(event: string, ...args: unknown[]): void {
    for (const listener of [...(this.#listeners.get(event) ?? [])]) listener(...args);
  }

  connect(): this {
    if (this.connected || this.active) return this;
    this.active = true;
    this.gateway.wire(() => this.#attempt());
    return this;
  }

  disconnect(): this {
    clearTimeout(this.#retry);
    const connection = this.#connection;
    this.active = false;
    if (connection !== undefined && this.connected) {
      connection.alive = false;
      this.gateway.connections.delete(connection);
      this.#closed('io client disconnect');
    }
    return this;
  }

  emit(event: string, ...args: unknown[]): this {
    const last = args[args.length - 1];
    let ackId: number | undefined;
    if (typeof last === 'function') {
      ackId = this.#nextAck++;
      this.#acks.set(ackId, last as Ack);
      args.pop();
    }
    const payload = wireCopy(args[0]);
    const send = () => {
      const connection = this.#connection;
      this.gateway.wire(() => connection?.receive(event, payload, ackId));
    };
    if (this.connected) send();
    else this.#sendBuffer.push(send);
    return this;
  }

  #attempt(): void {
    if (!this.active || this.connected) return;
    this.attempts++;
    if (!this.gateway.online) {
      this.#fire('connect_error', new Error('xhr poll error'));
      this.#scheduleRetry();
      return;
    }
    const auth = this.options.auth;
    const handshake = (data: object | undefined) => {
      const token = (data as { token?: string } | undefined)?.token;
      this.gateway.wire(() => this.#handshake(token));
    };
    if (typeof auth === 'function') auth(handshake);
    else handshake(auth);
  }

  #handshake(token: string | undefined): void {
    if (!this.active) return;
    this.gateway.handshakeTokens.push(token);
    const refused = token !== undefined && this.gateway.revokedTokens.has(token) ? 'tokens issued before the revocation are refused' : this.gateway.authorize(token);
    if (refused !== null) {
      this.gateway.wire(() => {
        // socket.io-client: CONNECT_ERROR destroys the socket; nothing reconnects by itself.
        this.active = false;
        const error = Object.assign(new Error(refused), { data: { code: ErrorCode.Unauthorized, message: refused } });
        this.#fire('connect_error', error);
      });
      return;
    }
    const connection = new FakeConnection(this.gateway, this, token);
    this.gateway.connections.add(connection);
    this.gateway.wire(() => {
      if (!this.active || !connection.alive) return;
      this.#connection = connection;
      this.connected = true;
      const buffered = this.#sendBuffer;
      this.#sendBuffer = [];
      for (const send of buffered) send();
      this.#fire('connect');
    });
  }

  #scheduleRetry(): void {
    if (this.options.reconnection === false) return;
    clearTimeout(this.#retry);
    this.#retry = setTimeout(() => this.#attempt(), this.options.reconnectionDelay ?? 1000);
  }

  /** @internal gateway → this socket */
  receiveEvent(from: FakeConnection, event: string, payload: unknown): void {
    if (from !== this.#connection || !this.connected) return;
    this.#fire(event, payload);
  }

  /** @internal */
  receiveAck(from: FakeConnection, id: number, result: unknown): void {
    if (from !== this.#connection) return;
    const ack = this.#acks.get(id);
    this.#acks.delete(id);
    ack?.(result);
  }

  /** @internal the gateway closed the connection */
  lost(from: FakeConnection, reason: 'transport close' | 'io server disconnect'): void {
    if (from !== this.#connection || !this.connected) return;
    if (reason === 'io server disconnect') this.active = false;
    this.#closed(reason);
    if (this.active) this.#scheduleRetry();
  }

  #closed(reason: string): void {
    this.connected = false;
    this.#connection = undefined;
    this.#acks.clear();
    this.#fire('disconnect', reason);
  }
}
