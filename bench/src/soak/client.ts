/**
 * One simulated browser of the soak: a socket.io connection with a JWT, its
 * subscriptions (each judged by a SubscriptionCheck), and what the soak does
 * to it — unsubscribe/subscribe churn, cuts four ways, token refreshes with
 * narrower and broader tokens, a reader that stops reading. A cut client
 * comes back as a new connection with fresh subscriptions.
 */
import type { Socket as NetSocket } from 'node:net';
import { io, type Socket } from 'socket.io-client';
import {
  ClientEvent,
  ServerEvent,
  type ClientToServerEvents,
  type Delivery,
  type ResyncNotice,
  type ServerToClientEvents,
  type UnsubscribedNotice,
} from '@topicgate/shared';
import { nowUs } from '../clock.js';
import type { Histogram } from '../stats.js';
import { SubscriptionCheck, type CheckContext, type SoakBody } from './checker.js';
import { SLOW_CLIENT_PATTERNS, randomPattern, type KeySpace, type Scope } from './keys.js';
import type { CutMethod, WorkerCounters } from './messages.js';

/** What a client needs of the worker it lives in. */
export interface ClientHost {
  readonly url: string;
  readonly space: KeySpace;
  readonly ctx: CheckContext;
  readonly counters: WorkerCounters;
  /** Latency of the slow client's deliveries is kept apart: it includes its pauses. */
  latency(slow: boolean): Histogram;
  rng(): number;
  token(clientId: number, scope: Scope): string;
  /** The run is over: notices (shutdown) and disconnects are expected, nothing reconnects. */
  readonly closing: boolean;
}

type GatewaySocket = Socket<ServerToClientEvents, ClientToServerEvents>;

/** The `ws` WebSocket under engine.io-client's websocket transport (Node), as far as the soak touches it. */
interface WsLike {
  _socket?: NetSocket;
  pause(): void;
  resume(): void;
}

const REQUEST_TIMEOUT_MS = 30_000;
/** Ended subscription ids remembered per connection, to catch deliveries that arrive after the end. */
const ENDED_MEMORY = 2000;

/** One socket.io connection of a client; a reconnect is a new Connection. */
class Connection {
  readonly subs = new Map<string, SubscriptionCheck>();
  /** Ids with an unsubscribe in flight (churn does not pick them again). */
  readonly unsubscribing = new Set<string>();
  /** Deliveries for ids whose subscribe ack has not been handled yet (a batch may overtake it). */
  readonly held = new Map<string, Array<{ delivery: Delivery; at: number }>>();
  /** Subscriptions that ended: nothing may arrive for them any more. */
  readonly ended = new Set<string>();
  pending = 0;
  /** Cut by the soak or disconnected: its events are ignored from then on. */
  dead = false;

  constructor(
    readonly socket: GatewaySocket,
    readonly number: number,
  ) {}

  markEnded(id: string): void {
    this.subs.delete(id);
    this.unsubscribing.delete(id);
    this.ended.add(id);
    if (this.ended.size > ENDED_MEMORY) this.ended.delete(this.ended.values().next().value!);
  }

  ws(): WsLike | undefined {
    return (this.socket.io.engine as unknown as { transport?: { ws?: WsLike } } | undefined)?.transport?.ws;
  }
}

const inc = (map: Record<string, number>, key: string, by = 1) => (map[key] = (map[key] ?? 0) + by);

export class SoakClient {
  scope: Scope = 'broad';
  private conn: Connection | null = null;
  private connections = 0;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private resumeTimer: NodeJS.Timeout | null = null;

  constructor(
    readonly id: number,
    /** Subscriptions this client keeps (topped up after churn, refreshes and reconnects). */
    readonly target: number,
    /** The client that periodically stops reading; it is never churned, cut or refreshed. */
    readonly slow: boolean,
    private readonly host: ClientHost,
  ) {}

  get connected(): boolean {
    return this.conn !== null && !this.conn.dead;
  }

  get liveSubscriptions(): SubscriptionCheck[] {
    return this.connected ? [...this.conn!.subs.values()] : [];
  }

  get pendingRequests(): number {
    return this.connected ? this.conn!.pending : 0;
  }

  /** Opens a new connection with a fresh token; false (and a retry later) when the handshake fails. */
  async connect(): Promise<boolean> {
    const number = ++this.connections;
    const socket: GatewaySocket = io(this.host.url, {
      transports: ['websocket'],
      forceNew: true,
      reconnection: false,
      timeout: 20_000,
      auth: { token: this.host.token(this.id, this.scope) },
    });
    const conn = new Connection(socket, number);
    this.conn = conn;
    this.wire(conn);
    const ok = await new Promise<boolean>((resolve) => {
      socket.once('connect', () => resolve(true));
      socket.once('connect_error', (err: Error) => {
        inc(this.host.counters.connectFailures, err.message.slice(0, 120));
        resolve(false);
      });
    });
    if (!ok) {
      conn.dead = true;
      socket.disconnect();
      this.scheduleReconnect(2000);
    }
    return ok;
  }

  /** Subscribes until the client holds its target (requests in flight count). */
  topUp(): void {
    const conn = this.conn;
    if (!conn || conn.dead || this.host.closing) return;
    let have = conn.subs.size + conn.pending;
    while (have++ < this.target) {
      const pattern = this.slow ? SLOW_CLIENT_PATTERNS[0]! : randomPattern(this.host.space, this.scope, this.id, () => this.host.rng());
      void this.subscribe(pattern);
    }
  }

  /** One churn pair: unsubscribe a random subscription, subscribe a new random pattern. */
  async churnOne(): Promise<boolean> {
    const conn = this.conn;
    if (!conn || conn.dead) return false;
    const candidates = [...conn.subs.keys()].filter((id) => !conn.unsubscribing.has(id));
    if (candidates.length === 0) return false;
    const id = candidates[Math.floor(this.host.rng() * candidates.length)]!;
    if (!(await this.unsubscribe(conn, id))) return false;
    await this.subscribe(randomPattern(this.host.space, this.scope, this.id, () => this.host.rng()));
    this.host.counters.churnPairs++;
    return true;
  }

  /** Cuts the connection abruptly; the client comes back shortly as a new connection with fresh subscriptions. */
  cut(method: CutMethod): boolean {
    const conn = this.conn;
    if (!conn || conn.dead) return false;
    // Judged up to what arrived: the connection's end is ours, not a loss.
    this.retire(conn, `cut:${method}`);
    const ws = conn.ws();
    switch (method) {
      case 'disconnect':
        conn.socket.disconnect();
        break;
      case 'transport-close':
        // engine.io closes its WebSocket (a close frame), without socket.io's disconnect packet.
        conn.socket.io.engine.close();
        break;
      case 'destroy':
        // The TCP connection goes (FIN) with no WebSocket close frame.
        if (ws?._socket) ws._socket.destroy();
        else conn.socket.io.engine.close();
        break;
      case 'reset':
        // RST: the gateway sees ECONNRESET.
        if (ws?._socket) ws._socket.resetAndDestroy();
        else conn.socket.io.engine.close();
        break;
    }
    // Whatever the transport did, the socket.io client must not linger.
    setTimeout(() => conn.socket.disconnect(), 5000).unref();
    inc(this.host.counters.cuts, method);
    this.scheduleReconnect(500 + this.host.rng() * 1000);
    return true;
  }

  /** Sends `refresh` with a token of `scope`; subscriptions a narrower token does not allow end with `unsubscribed: forbidden`. */
  refresh(scope: Scope): void {
    const conn = this.conn;
    if (!conn || conn.dead) return;
    // Narrowing: from now on pick only what the narrow token allows (requests in flight may still be refused).
    if (scope === 'narrow') this.scope = 'narrow';
    conn.pending++;
    conn.socket.timeout(REQUEST_TIMEOUT_MS).emit(ClientEvent.Refresh, { token: this.host.token(this.id, scope) }, (err, ack) => {
      conn.pending--;
      if (conn.dead) return;
      if (err) return void inc(this.host.counters.refreshErrors, 'timeout');
      if (!ack.ok) return void inc(this.host.counters.refreshErrors, ack.error.code);
      this.scope = scope;
      inc(this.host.counters.refreshes, scope);
      if (scope === 'broad') this.topUp();
    });
  }

  /** Stops reading from the socket for `ms` (the gateway's per-client buffer fills, then it drops and sends `resync: overflow`). */
  pause(ms: number): boolean {
    const ws = this.conn && !this.conn.dead ? this.conn.ws() : undefined;
    if (!ws) return false;
    ws.pause();
    this.host.counters.pauses++;
    this.resumeTimer = setTimeout(() => this.resume(), ms);
    return true;
  }

  resume(): void {
    if (this.resumeTimer) clearTimeout(this.resumeTimer);
    this.resumeTimer = null;
    if (this.conn && !this.conn.dead) this.conn.ws()?.resume();
  }

  close(): void {
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.resume();
    const conn = this.conn;
    if (!conn) return;
    conn.dead = true;
    conn.socket.disconnect();
  }

  private subscribe(pattern: string): Promise<boolean> {
    const conn = this.conn;
    if (!conn || conn.dead) return Promise.resolve(false);
    conn.pending++;
    this.host.counters.subscribes++;
    return new Promise((resolve) => {
      conn.socket.timeout(REQUEST_TIMEOUT_MS).emit(ClientEvent.Subscribe, { pattern }, (err, ack) => {
        conn.pending--;
        if (conn.dead) return resolve(false);
        if (err || !ack.ok) {
          // Refusals are counted by code: `forbidden` is expected around narrowing refreshes, `unavailable` during broker outages.
          inc(this.host.counters.subscribeErrors, err ? 'timeout' : ack.ok ? '' : ack.error.code);
          return resolve(false);
        }
        // Taken here, in the ack callback: a message sent after this instant must arrive.
        const check = new SubscriptionCheck({ client: this.id, id: ack.id, pattern, connection: conn.number }, nowUs(), this.host.ctx);
        conn.subs.set(ack.id, check);
        const early = conn.held.get(ack.id);
        conn.held.delete(ack.id);
        for (const { delivery } of early ?? []) check.deliver(delivery.key, delivery.body as unknown as SoakBody, delivery.seq);
        resolve(true);
      });
    });
  }

  private unsubscribe(conn: Connection, id: string): Promise<boolean> {
    conn.unsubscribing.add(id);
    conn.pending++;
    return new Promise((resolve) => {
      conn.socket.timeout(REQUEST_TIMEOUT_MS).emit(ClientEvent.Unsubscribe, { id }, (err, ack) => {
        conn.pending--;
        if (conn.dead) return resolve(false);
        if (err || !ack.ok) {
          // Still live as far as we know: keep judging it.
          conn.unsubscribing.delete(id);
          inc(this.host.counters.unsubscribeErrors, err ? 'timeout' : ack.ok ? '' : ack.error.code);
          return resolve(false);
        }
        conn.subs.get(id)?.end('unsubscribed');
        conn.markEnded(id);
        resolve(true);
      });
    });
  }

  private wire(conn: Connection): void {
    const { socket } = conn;
    const { counters, ctx } = this.host;
    socket.on(ServerEvent.Messages, (batch: Delivery[]) => {
      if (conn.dead) return;
      const at = nowUs();
      const latency = this.host.latency(this.slow);
      for (const delivery of batch) {
        const body = delivery.body as unknown as SoakBody;
        if (typeof body.g === 'number' && typeof body.t === 'number') {
          ctx.baselines.observe(body.g, body.t, at);
          latency.record(at - body.t);
        }
        const check = conn.subs.get(delivery.id);
        if (check) check.deliver(delivery.key, body, delivery.seq);
        else if (conn.ended.has(delivery.id)) counters.afterEnd++;
        else this.hold(conn, delivery, at);
      }
    });
    socket.on(ServerEvent.Resync, ({ id, reason }: ResyncNotice) => {
      if (conn.dead) return;
      inc(counters.resyncs, reason);
      if (this.slow) inc(counters.slowResyncs, reason);
      conn.subs.get(id)?.resync(reason, nowUs());
    });
    socket.on(ServerEvent.Unsubscribed, ({ id, reason }: UnsubscribedNotice) => {
      if (conn.dead || this.host.closing) return;
      inc(counters.unsubscribed, reason);
      conn.subs.get(id)?.end(`unsubscribed:${reason}`);
      conn.markEnded(id);
    });
    socket.on('disconnect', (reason: string) => {
      if (conn.dead || this.host.closing) return;
      inc(counters.unplannedDisconnects, reason);
      if (this.slow) counters.slowDisconnects++;
      this.retire(conn, `disconnected:${reason}`);
      this.scheduleReconnect(1000);
    });
  }

  /** A delivery for an id not acked yet; given up on (counted) if no ack names it within the request timeout. */
  private hold(conn: Connection, delivery: Delivery, at: number): void {
    let list = conn.held.get(delivery.id);
    if (!list) conn.held.set(delivery.id, (list = []));
    list.push({ delivery, at });
    for (const [id, entries] of conn.held) {
      if (at - entries[0]!.at < REQUEST_TIMEOUT_MS * 1000) continue;
      this.host.counters.unknownSubscription += entries.length;
      conn.held.delete(id);
    }
  }

  /** The connection is over for the soak: judge every subscription up to what arrived. */
  private retire(conn: Connection, reason: string): void {
    conn.dead = true;
    for (const check of conn.subs.values()) check.end(reason);
    conn.subs.clear();
    conn.held.clear();
    this.resume();
  }

  private scheduleReconnect(delayMs: number): void {
    if (this.host.closing) return;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (this.host.closing) return;
      void this.connect().then((ok) => {
        if (!ok) return;
        this.host.counters.reconnects++;
        this.topUp();
      });
    }, delayMs);
  }
}
