/**
 * One browser connection: its subscriptions, their queues, and protocol v1's
 * client events. Every subscription owns exactly one transient consumer (an
 * exclusive queue); whatever way the subscription ends — unsubscribe,
 * disconnect, a refused refresh, a broker error — that consumer is stopped and
 * its queue deleted.
 */
import {
  canonicalPattern,
  ClientEvent,
  ErrorCode,
  patternCostError,
  ServerEvent,
  UnsubscribedReason,
  type Ack,
  type ProtocolError,
  type ResyncReason,
} from '@topicgate/shared';
import type { Socket } from 'socket.io';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { BrokerRefusedOperationError, UnavailableError, type Consumer, type ConsumerEndReason, type MqConnector, type MqMessage } from '../mq/connector.js';
import type { Access, Principal } from './access.js';
import { Outbox } from './outbox.js';
import type { PerSubjectLimit } from './handshake.js';
import { RateLimit } from './rate-limit.js';
import { Subscription, type EndCause } from './subscription.js';
import { parseRefresh, parseSubscribe, parseUnsubscribe } from './requests.js';

export interface SessionLimits {
  maxSubscriptions: number;
  subscribesPerSecond: number;
  /** Bytes of deliveries waiting for a slow client before its deliveries are dropped (then `resync: overflow`). */
  clientBufferBytes: number;
}

export interface SessionDeps {
  mq: MqConnector;
  access: Access;
  limits: SessionLimits;
  metrics: Metrics;
  log: Logger;
  /** Gateway-wide unique subscription ids; they also name the queues. */
  nextSubscriptionId: () => string;
  /** Subscriptions (each a broker queue) per token subject, over all of its connections. */
  subscriptionsPerSubject: PerSubjectLimit;
}

/** Acks are typed per event on the client side; here any protocol ack goes through one callback. */
type AckFn = (result: Ack<{ id?: string }>) => void;

const KNOWN_EVENTS = new Set<string>(Object.values(ClientEvent));

/** The longest timer Node accepts; later expiries are re-armed when it fires. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Longest wait at shutdown for a client's last notices to be written before its connection is cut. */
const SHUTDOWN_FLUSH_MS = 2_000;

export class ClientSession {
  /** Acknowledged subscriptions, by id. */
  private readonly subscriptions = new Map<string, Subscription>();
  /** Subscriptions whose queue is being declared: not yet known to the client. */
  private readonly declaring = new Set<Subscription>();
  private readonly outbox: Outbox;
  private readonly rate: RateLimit;
  /** Refreshes re-check every subscription: a client may not make the gateway do that in a loop. */
  private readonly refreshRate = new RateLimit(REFRESHES_PER_SECOND);
  private readonly log: Logger;
  private phase: 'open' | 'closed' = 'open';
  private expiryTimer: NodeJS.Timeout | null = null;
  /** Kinds of client mistakes already logged as warnings for this socket. */
  private readonly warned = new Set<string>();

  constructor(
    private readonly socket: Socket,
    private principal: Principal,
    private readonly deps: SessionDeps,
  ) {
    this.log = deps.log.child({ socket: socket.id, sub: principal.sub });
    this.outbox = new Outbox(socket, deps.metrics, deps.limits.clientBufferBytes);
    this.rate = new RateLimit(deps.limits.subscribesPerSecond);
    socket.on(ClientEvent.Subscribe, (...args: unknown[]) => this.handle(ClientEvent.Subscribe, args, (payload, reply) => this.subscribe(payload, reply)));
    socket.on(ClientEvent.Unsubscribe, (...args: unknown[]) => this.handle(ClientEvent.Unsubscribe, args, (payload, reply) => this.unsubscribe(payload, reply)));
    socket.on(ClientEvent.Refresh, (...args: unknown[]) => this.handle(ClientEvent.Refresh, args, (payload, reply) => this.refresh(payload, reply)));
    socket.onAny((event: string, ...args: unknown[]) => this.onUnknownEvent(event, args));
    socket.on('disconnect', (reason) => void this.close(reason));
    this.armExpiry();
    deps.metrics.connections.inc();
    this.log.debug('connected');
  }

  /** Ends every subscription with `reason` and disconnects (gateway shutdown). */
  async shutdown(): Promise<void> {
    const subs = [...this.subscriptions.values()];
    await Promise.all(subs.map((sub) => this.end(sub, UnsubscribedReason.Shutdown)));
    // engine.io closes the connection once the notices are written; io.close()
    // afterwards would discard whatever is still queued. Wait for it, bounded.
    const conn = this.socket.conn;
    const closed = new Promise<void>((resolve) => {
      if (conn.readyState === 'closed') return resolve();
      const timer = setTimeout(resolve, SHUTDOWN_FLUSH_MS);
      conn.once('close', () => (clearTimeout(timer), resolve()));
    });
    this.socket.disconnect(true);
    await closed;
    await this.close('server shutting down');
  }

  private async subscribe(payload: unknown, reply: AckFn): Promise<void> {
    const started = performance.now();
    const parsed = parseSubscribe(payload);
    if (!parsed.ok) return this.refuse(reply, parsed.error);
    // Authorized and bound in its canonical form: the same keys, the least work for the broker.
    const pattern = canonicalPattern(parsed.value.pattern);
    const tooCostly = patternCostError(pattern);
    if (tooCostly) return this.refuse(reply, { code: ErrorCode.InvalidPattern, message: tooCostly });
    const { maxSubscriptions } = this.deps.limits;
    if (this.subscriptions.size + this.declaring.size >= maxSubscriptions) {
      return this.refuse(reply, { code: ErrorCode.LimitExceeded, message: `at most ${maxSubscriptions} subscriptions per connection; unsubscribe from one first` });
    }
    if (!this.rate.take()) {
      return this.refuse(reply, { code: ErrorCode.LimitExceeded, message: `more than ${this.deps.limits.subscribesPerSecond} subscribes per second; slow down` });
    }
    const allowed = this.deps.access.authorize(this.principal, pattern);
    if (!allowed.ok) return this.refuse(reply, { code: ErrorCode.Forbidden, message: allowed.message });
    const release = this.deps.subscriptionsPerSubject.reserve(this.principal.sub);
    if (!release) {
      const { max } = this.deps.subscriptionsPerSubject;
      return this.refuse(reply, { code: ErrorCode.LimitExceeded, message: `at most ${max} subscriptions per token subject over all of its connections; unsubscribe from one first` });
    }

    const id = this.deps.nextSubscriptionId();
    const sub = new Subscription(id, pattern, this.log.child({ subscription: id, pattern }), release);
    this.declaring.add(sub);
    let consumer: Consumer;
    try {
      consumer = await this.deps.mq.startConsuming(pattern, (message) => this.relay(sub, message), {
        name: id,
        onResync: (reason) => this.resync(sub, reason),
        onEnd: (reason, detail) => this.onConsumerEnded(sub, reason, detail),
      });
    } catch (err) {
      this.declaring.delete(sub);
      sub.beginEnd('broker');
      await sub.finish(null);
      if (err instanceof BrokerRefusedOperationError) {
        // Retrying cannot help until an operator changes the broker's permissions or definitions: say so, so the SDK stops.
        sub.log.error({ err: err.message, replyCode: err.replyCode }, 'the broker refused the subscription and will refuse it again; an operator must act');
        return this.refuse(reply, { code: ErrorCode.Refused, message: 'the broker refused the subscription and will refuse it again; an operator must act (the gateway logged why)' });
      }
      // The broker's own words name users, vhosts and queues: they go to the log, not to browsers.
      const message = err instanceof UnavailableError ? err.message : 'the broker refused the subscription; retry later (the gateway logged why)';
      sub.log.warn({ err: (err as Error).message }, 'subscribe failed');
      return this.refuse(reply, { code: ErrorCode.Unavailable, message });
    }
    this.declaring.delete(sub);
    // The token may have been refreshed while the queue was being declared: authorize again against the one in force now.
    const stillAllowed = this.deps.access.authorize(this.principal, pattern);
    if (!stillAllowed.ok) sub.beginEnd('forbidden');
    if (sub.state === 'ending') {
      // Ended while its queue was being declared: by a narrower token, the broker, or the socket going away.
      await sub.finish(consumer);
      if (sub.endCause === 'forbidden') return this.refuse(reply, { code: ErrorCode.Forbidden, message: stillAllowed.ok ? 'the token no longer allows this pattern' : stillAllowed.message });
      if (sub.endCause === 'broker') return this.refuse(reply, { code: ErrorCode.Unavailable, message: 'the broker dropped the queue while subscribing; retry' });
      return; // the socket is gone: nobody to answer
    }
    for (const early of sub.commit(consumer)) this.outbox.offer(sub, early.key, early.json);
    this.subscriptions.set(id, sub);
    this.deps.metrics.subscriptions.inc();
    this.deps.metrics.subscribeLatency.observe((performance.now() - started) / 1000);
    sub.log.debug('subscribed');
    reply({ ok: true, id });
  }

  private async unsubscribe(payload: unknown, reply: AckFn): Promise<void> {
    const parsed = parseUnsubscribe(payload);
    if (!parsed.ok) return reply({ ok: false, error: parsed.error });
    const sub = this.subscriptions.get(parsed.value.id);
    if (!sub) {
      return reply({ ok: false, error: { code: ErrorCode.UnknownSubscription, message: `no subscription "${parsed.value.id}" on this connection` } });
    }
    await this.stop(sub, 'unsubscribed');
    sub.log.debug('unsubscribed');
    // Deliveries batched before the queue went come first: nothing follows the ack.
    this.outbox.writePending();
    reply({ ok: true });
  }

  private async refresh(payload: unknown, reply: AckFn): Promise<void> {
    const parsed = parseRefresh(payload);
    if (!parsed.ok) return reply({ ok: false, error: parsed.error });
    if (!this.refreshRate.take()) {
      return reply({ ok: false, error: { code: ErrorCode.LimitExceeded, message: `more than ${REFRESHES_PER_SECOND} refreshes per second; a token needs refreshing once before it expires` } });
    }
    let next: Principal;
    try {
      next = await this.deps.access.verify(parsed.value.token);
    } catch (err) {
      return reply({ ok: false, error: { code: ErrorCode.Unauthorized, message: (err as Error).message } });
    }
    if (next.sub !== this.principal.sub) {
      return reply({ ok: false, error: { code: ErrorCode.Unauthorized, message: 'a refreshed token must have the same sub as the connection\'s token' } });
    }
    const previous = this.principal;
    this.principal = next;
    this.armExpiry();
    // The usual refresh only extends the expiry: nothing to re-check when the topics are the same.
    const revoked = sameTopics(previous.topics, next.topics) ? [] : [...this.subscriptions.values()].filter((sub) => !this.deps.access.authorize(next, sub.pattern).ok);
    await Promise.all(revoked.map((sub) => this.end(sub, UnsubscribedReason.Forbidden)));
    this.log.debug({ revoked: revoked.length }, 'token refreshed');
    reply({ ok: true });
  }

  /** The hot path: one AMQP delivery becomes one entry of this socket's next `messages` frame. */
  private relay(sub: Subscription, message: MqMessage): void {
    if (sub.hold(message.key, message.json) || !sub.relaying) return;
    this.outbox.offer(sub, message.key, message.json);
  }

  private resync(sub: Subscription, reason: ResyncReason): void {
    if (sub.interruptedWhileDeclaring() || !sub.relaying || this.phase === 'closed') return;
    this.deps.metrics.resyncs.inc({ reason });
    this.outbox.emit(ServerEvent.Resync, { id: sub.id, reason });
  }

  private onConsumerEnded(sub: Subscription, reason: ConsumerEndReason, detail: string): void {
    const from = sub.beginEnd('broker');
    if (from === null) return;
    sub.log.warn({ reason, detail }, 'subscription ended by the broker');
    if (from === 'declaring') return; // its subscribe finishes it, and answers
    this.subscriptions.delete(sub.id);
    this.deps.metrics.subscriptions.dec();
    const notice = reason === 'closed' ? UnsubscribedReason.Shutdown : UnsubscribedReason.QueueDeleted;
    // Told once its queue is gone (the consumer deletes it after a broker error), as the protocol says.
    void sub.finish().then(() => {
      if (this.phase === 'open') this.outbox.emit(ServerEvent.Unsubscribed, { id: sub.id, reason: notice });
    });
  }

  /** Server-initiated end: delete the queue, then tell the client. */
  private async end(sub: Subscription, reason: UnsubscribedReason): Promise<void> {
    await this.stop(sub, reason === UnsubscribedReason.Forbidden ? 'forbidden' : 'shutdown');
    if (this.phase === 'open') this.outbox.emit(ServerEvent.Unsubscribed, { id: sub.id, reason });
  }

  /** Ends an acknowledged subscription: nothing relayed from now on, its queue deleted. */
  private async stop(sub: Subscription, cause: EndCause): Promise<void> {
    if (sub.beginEnd(cause) !== 'live') return;
    this.subscriptions.delete(sub.id);
    this.deps.metrics.subscriptions.dec();
    await sub.finish();
  }

  private async close(reason: string): Promise<void> {
    if (this.phase === 'closed') return;
    this.phase = 'closed';
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    this.outbox.dispose();
    this.deps.metrics.connections.dec();
    for (const sub of this.declaring) sub.beginEnd('closed'); // each subscribe finishes its own
    const subs = [...this.subscriptions.values()];
    await Promise.all(subs.map((sub) => this.stop(sub, 'closed')));
    this.log.debug({ reason, subscriptions: subs.length }, 'disconnected; queues deleted');
  }

  private armExpiry(): void {
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    this.expiryTimer = null;
    const { exp } = this.principal;
    if (exp === undefined) return;
    const ms = exp * 1000 - Date.now();
    this.expiryTimer = setTimeout(() => {
      if (Date.now() < exp * 1000) return this.armExpiry();
      this.log.info('token expired without a refresh; disconnecting');
      this.socket.disconnect(true);
    }, Math.max(0, Math.min(ms, MAX_TIMER_MS)));
    this.expiryTimer.unref();
  }

  private refuse(reply: AckFn, error: ProtocolError): void {
    this.deps.metrics.rejectedSubscribes.inc({ code: error.code });
    this.log.debug({ code: error.code, message: error.message }, 'subscribe refused');
    reply({ ok: false, error });
  }

  /**
   * Runs a client event's handler. Protocol v1 events carry exactly one
   * payload and an acknowledgement callback; without a callback nobody can be
   * answered (logged and ignored), with the wrong number of payloads the
   * answer is `bad_request`.
   */
  private handle(event: string, args: unknown[], handler: (payload: unknown, reply: AckFn) => Promise<void>): void {
    const ack = args[args.length - 1];
    if (typeof ack !== 'function') {
      this.warnOnce('no-ack', { event }, `ignored "${event}" sent without an acknowledgement callback; protocol v1 requires one`);
      return;
    }
    const reply = ack as AckFn;
    if (args.length !== 2) {
      reply({ ok: false, error: { code: ErrorCode.BadRequest, message: `"${event}" takes exactly one payload object and an acknowledgement callback, got ${args.length - 1} payloads` } });
      return;
    }
    handler(args[0], reply).catch((err: unknown) => {
      this.log.error({ event, err: (err as Error).message }, 'unexpected error handling a client event');
      reply({ ok: false, error: { code: ErrorCode.Unavailable, message: 'internal error; retry later' } });
    });
  }

  /** A client's repeated mistake is logged once as a warning, then at debug: one socket cannot flood the log. */
  private warnOnce(kind: string, fields: Record<string, unknown>, message: string): void {
    if (this.warned.has(kind)) return this.log.debug(fields, message);
    this.warned.add(kind);
    this.log.warn(fields, `${message} (further ones from this socket are logged at debug)`);
  }

  private onUnknownEvent(event: string, args: unknown[]): void {
    if (KNOWN_EVENTS.has(event)) return;
    this.warnOnce('unknown-event', { event: String(event).slice(0, 100) }, 'ignored an unknown event');
    const ack = args[args.length - 1];
    if (typeof ack === 'function') {
      ack({ ok: false, error: { code: ErrorCode.BadRequest, message: `unknown event "${String(event).slice(0, 100)}"; protocol v1 has ${[...KNOWN_EVENTS].join(', ')}` } });
    }
  }
}

/** Refreshes a socket may send per second (and in a burst). */
export const REFRESHES_PER_SECOND = 2;

function sameTopics(a: readonly string[], b: readonly string[]): boolean {
  if (a === b) return true;
  const set = new Set(a);
  return a.length === b.length && b.every((topic) => set.has(topic)) && new Set(b).size === set.size;
}
