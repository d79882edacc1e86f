/**
 * One browser connection: its subscriptions, their queues, and protocol v1's
 * client events. Every subscription owns exactly one consumer: a transient one
 * (an exclusive queue), or a resumable one when the gateway has a resume
 * window and the client asked (docs/protocol.md §15). Whatever way a
 * subscription ends — unsubscribe, disconnect, a refused refresh, a broker
 * error — its consumer is stopped and its queue deleted; except that a
 * resumable subscription whose client went away unexpectedly is detached,
 * its queue left to the broker for the window.
 */
import {
  canonicalPattern,
  ClientEvent,
  ErrorCode,
  patternCostError,
  ServerEvent,
  UnsubscribedReason,
  ResyncReason,
  type Ack,
  type ProtocolError,
  type ResumeGrant,
  type ResumeRequest,
} from '@topicgate/shared';
import type { Socket } from 'socket.io';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import {
  BrokerRefusedOperationError,
  UnavailableError,
  type Consumer,
  type ConsumerEndReason,
  type HeldDelivery,
  type MqConnector,
  type MqMessage,
  type RenewReason,
  type ResumableOptions,
  type ResumeOutcome,
} from '../mq/connector.js';
import type { Access, Principal } from './access.js';
import { Outbox } from './outbox.js';
import type { PerSubjectLimit } from './handshake.js';
import { RateLimit } from './rate-limit.js';
import { Subscription, type EarlyDelivery, type EndCause } from './subscription.js';
import { parseReceived, parseRefresh, parseSubscribe, parseUnsubscribe } from './requests.js';
import { anchor } from './resume/alignment.js';
import { claimMatches, newClaim } from './resume/claims.js';
import { ResumeIntake } from './resume/intake.js';
import type { Takeovers } from './resume/takeovers.js';

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
  /** Null: no resume window (TOPICGATE_RESUME_WINDOW=0); every subscription is transient. */
  resume: ResumeSettings | null;
}

export interface ResumeSettings {
  windowSeconds: number;
  /** Messages a resumable subscription's queue may hold for its client (TOPICGATE_RESUME_BACKLOG). */
  maxBacklog: number;
  takeovers: Takeovers;
}

/** How the socket's subscriptions end when it disconnects: deleted, or (resumable ones) left for a resume. */
export type Departure = 'ended' | 'away';

/** What a subscribe declared: its consumer, and for a resume request whether it resumed. */
interface Declared {
  consumer: Consumer;
  resumed?: boolean;
  /** Resumed: the receipt seq the broker's queue now starts at (§15.4). */
  settled?: number;
  reason?: ResyncReason;
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
  /** Set before the gateway disconnects the socket itself; otherwise the disconnect reason decides. */
  private departure: Departure | null = null;
  /** `received` requests are handled one at a time: each waits for the broker (a fence), and a client may not pile them up. */
  private receipts: Promise<void> = Promise.resolve();
  /** Live resumable subscriptions' queues and takeover hooks. */
  private readonly held = new Map<Subscription, { queue: string; letGo: () => void }>();
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
    socket.on(ClientEvent.Received, (...args: unknown[]) => this.handle(ClientEvent.Received, args, (payload, reply) => this.received(payload, reply)));
    socket.onAny((event: string, ...args: unknown[]) => this.onUnknownEvent(event, args));
    // Only the client's own disconnect (client.close(), a closed tab) is meant: anything else may be resumed.
    socket.on('disconnect', (reason) => void this.close(reason, this.departure ?? (reason === 'client namespace disconnect' ? 'ended' : 'away')));
    this.armExpiry();
    deps.metrics.connections.inc();
    this.log.debug('connected');
  }

  /** The gateway disconnects the socket: its subscriptions end as `departure` says. */
  disconnect(departure: Departure): void {
    this.departure = departure;
    this.socket.disconnect(true);
  }

  /**
   * Gateway shutdown: ends every transient subscription with `unsubscribed
   * shutdown`, detaches every resumable one without a notice (its client
   * resumes it on another gateway), and disconnects.
   */
  async shutdown(): Promise<void> {
    this.departure = 'away';
    const subs = [...this.subscriptions.values()];
    await Promise.all(subs.map((sub) => (sub.resumable ? this.stop(sub, 'away') : this.end(sub, UnsubscribedReason.Shutdown))));
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
    await this.close('server shutting down', 'away');
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
    if (!allowed.ok) {
      // Final for this client: the queue it would have resumed goes now, not when the window ends.
      const claim = parsed.value.resume?.claim;
      if (claim !== undefined && this.deps.resume !== null && claimMatches(claim, this.principal.sub, pattern)) await this.deps.mq.abandonResumable(claim);
      return this.refuse(reply, { code: ErrorCode.Forbidden, message: allowed.message });
    }
    const release = this.deps.subscriptionsPerSubject.reserve(this.principal.sub);
    if (!release) {
      const { max } = this.deps.subscriptionsPerSubject;
      return this.refuse(reply, { code: ErrorCode.LimitExceeded, message: `at most ${max} subscriptions per token subject over all of its connections; unsubscribe from one first` });
    }

    const resumeRequest = parsed.value.resume;
    const wantsResume = this.deps.resume !== null && (parsed.value.resumable === true || resumeRequest !== undefined);
    // Without room for another resumable consumer the subscription is made transient: it works, it just does not outlive a cut.
    const resumable = wantsResume && this.deps.mq.hasResumableCapacity;
    if (wantsResume && !resumable) this.warnOnce('resume-capacity', {}, 'no room for another resumable subscription on this gateway\'s broker connection (channel_max); made a plain one — run more gateways, or raise channel_max');
    // A resume that cannot be taken up here: the gateway has no window (expired), or no room (interrupted).
    const notResumed = this.deps.resume === null ? ResyncReason.Expired : ResyncReason.Interrupted;
    const id = this.deps.nextSubscriptionId();
    const sub = new Subscription(id, pattern, this.log.child({ subscription: id, pattern }), release, resumable);
    this.declaring.add(sub);
    let declared: Declared;
    try {
      declared = resumable ? await this.declareResumable(sub, resumeRequest) : { consumer: await this.declareTransient(sub), ...(resumeRequest && { resumed: false, reason: notResumed }) };
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
    const { consumer } = declared;
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
    for (const early of sub.commit(consumer)) this.deliver(sub, early);
    this.subscriptions.set(id, sub);
    if (resumable) this.holdQueue(sub, consumer.queue);
    this.deps.metrics.subscriptions.inc();
    this.deps.metrics.subscribeLatency.observe((performance.now() - started) / 1000);
    if (resumeRequest) this.deps.metrics.resumes.inc({ outcome: declared.resumed ? 'resumed' : declared.reason ?? 'expired' });
    sub.log.debug({ resumable, resumed: declared.resumed }, 'subscribed');
    reply({
      ok: true,
      id,
      ...(resumable && { resume: this.grant(consumer) }),
      ...(resumeRequest && { resumed: declared.resumed === true }),
      ...(declared.settled !== undefined && { settled: declared.settled }),
      ...(declared.reason && { reason: declared.reason }),
    });
  }

  private declareTransient(sub: Subscription): Promise<Consumer> {
    return this.deps.mq.startConsuming(sub.pattern, (message) => this.relay(sub, message), {
      name: sub.id,
      onResync: (reason) => this.resync(sub, reason),
      onEnd: (reason, detail) => this.onConsumerEnded(sub, reason, detail),
    });
  }

  /**
   * A resumable subscription: a new queue, or — for a resume request whose
   * claim is this subject's and this pattern's — the old one taken up, its
   * first deliveries aligned with what the client says it has. Whatever
   * cannot be resumed exactly becomes a new queue and a reason to reload.
   */
  private async declareResumable(sub: Subscription, request: ResumeRequest | undefined): Promise<Declared> {
    const { mq } = this.deps;
    const { takeovers } = this.deps.resume!;
    const fresh = async (reason?: ResyncReason): Promise<Declared> => {
      const consumer = await mq.startResumable(sub.pattern, (message, held) => this.relayHeld(sub, message, held), this.resumableOptions(sub, newClaim(this.principal.sub, sub.pattern)));
      return { consumer, ...(reason && { resumed: false, reason }) };
    };
    if (!request) return fresh();
    if (!claimMatches(request.claim, this.principal.sub, sub.pattern)) {
      sub.log.info('a resume presented a claim made for another subject or pattern; starting afresh');
      return fresh(ResyncReason.Expired);
    }
    await takeovers.takeOver(request.claim);
    const intake = new ResumeIntake({ seq: request.seq, settled: request.settled, ...(request.pending !== undefined && { pending: request.pending }), fingerprints: request.fingerprints });
    let taking = true;
    const outcome: ResumeOutcome = await mq.resumeConsuming(
      sub.pattern,
      (message, held) => (taking ? intake.push({ message, held }) : this.relayHeld(sub, message, held)),
      this.resumableOptions(sub, request.claim),
    );
    if (outcome.kind !== 'resumed') return fresh(RESUME_FAILURES[outcome.kind]);
    const alignment = await intake.decide(outcome.backlog, outcome.window);
    taking = false;
    const arrived = intake.drain();
    if (!alignment.ok) {
      sub.log.warn({ why: alignment.why }, 'could not tell which messages in flight at the cut the client has; starting afresh');
      await outcome.consumer.stopConsuming();
      return fresh(ResyncReason.Interrupted);
    }
    // The client has the first `skip` (seqs brokerSettled+1 … seq): they count as relayed, and are settled once it confirms them.
    sub.seq = alignment.brokerSettled;
    for (const { held } of arrived.slice(0, alignment.skip)) sub.relayed(++sub.seq, held);
    for (const { message, held } of arrived.slice(alignment.skip)) this.relayHeld(sub, message, held);
    // The receipt the broker's point corresponds to (anchor⁻¹): the client's `settled` from now on.
    return { consumer: outcome.consumer, resumed: true, settled: alignment.brokerSettled === 0 ? 0 : alignment.brokerSettled + 1 };
  }

  private resumableOptions(sub: Subscription, queue: string): ResumableOptions {
    const { windowSeconds, maxBacklog } = this.deps.resume!;
    return {
      queue,
      nextQueue: () => newClaim(this.principal.sub, sub.pattern),
      expiresMs: windowSeconds * 1000,
      maxBacklog,
      onRenew: (reason) => this.renewed(sub, reason),
      onEnd: (reason, detail) => this.onConsumerEnded(sub, reason, detail),
    };
  }

  private grant(consumer: Consumer): ResumeGrant {
    return { claim: consumer.queue, window: this.deps.resume!.windowSeconds };
  }

  /** Registers a live resumable subscription's queue (again, after a renewal), so a resume elsewhere can make this socket let go. */
  private holdQueue(sub: Subscription, queue: string): void {
    const letGo =
      this.held.get(sub)?.letGo ??
      (() => {
        sub.log.info('its client resumed it on another connection; disconnecting this one');
        this.disconnect('away');
      });
    this.releaseQueue(sub);
    this.held.set(sub, { queue, letGo });
    this.deps.resume!.takeovers.hold(queue, letGo);
  }

  private releaseQueue(sub: Subscription): void {
    const entry = this.held.get(sub);
    if (!entry) return;
    this.held.delete(sub);
    this.deps.resume?.takeovers.release(entry.queue, entry.letGo);
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

  /**
   * `received`: the client has every delivery up to each `seq`. They are
   * settled with the broker, and the ack waits until the broker has
   * processed the settles, so a client resuming later knows exactly where
   * the broker's queue starts (docs/protocol.md §15.3).
   */
  private received(payload: unknown, reply: AckFn): Promise<void> {
    const parsed = parseReceived(payload, this.deps.limits.maxSubscriptions);
    if (!parsed.ok) {
      reply({ ok: false, error: parsed.error });
      return Promise.resolve();
    }
    const next = this.receipts.then(async () => {
      const fences: Array<Promise<void>> = [];
      for (const [id, seq] of Object.entries(parsed.value.seqs)) {
        const sub = this.subscriptions.get(id);
        const consumer = sub?.resumableConsumer;
        // Ids that ended meanwhile, or that are not resumable, have nothing to settle. The delivery
        // named stays unsettled: it anchors a resume whose receipt was in flight (§15.4).
        if (sub && consumer && sub.confirmThrough(anchor(seq))) fences.push(consumer.fence());
      }
      try {
        await Promise.all(fences);
      } catch {
        // The channel died: its subscriptions renew (and resync); the client keeps what it had as unsettled.
        return reply({ ok: false, error: { code: ErrorCode.Unavailable, message: 'the broker connection failed before it took the receipts; they are void' } });
      }
      reply({ ok: true });
    });
    this.receipts = next.catch(() => undefined);
    return next;
  }

  /** The hot path: one AMQP delivery becomes one entry of this socket's next `messages` frame. */
  private relay(sub: Subscription, message: MqMessage): void {
    // Per delivery, so no allocation unless it must be kept.
    if (sub.holding) return sub.hold({ key: message.key, json: message.json });
    if (!sub.relaying) return;
    this.outbox.offer(sub, message.key, message.json);
  }

  /** The hot path of a resumable subscription: the delivery stays unsettled until the client confirms its seq. */
  private relayHeld(sub: Subscription, message: MqMessage, held: HeldDelivery): void {
    // An ending subscription leaves it unsettled: a detach returns it to the queue, a delete drops it.
    const delivery: EarlyDelivery = { key: message.key, json: message.json, held };
    if (sub.holding) return sub.hold(delivery);
    if (!sub.relaying) return;
    this.deliver(sub, delivery);
  }

  private deliver(sub: Subscription, { key, json, held }: EarlyDelivery): void {
    const seq = this.outbox.offer(sub, key, json);
    if (!held) return;
    if (seq > 0) sub.relayed(seq, held);
    else held.settle(); // never for a bounded stream; if it were dropped, the client reloads anyway
  }

  private resync(sub: Subscription, reason: ResyncReason, resume?: ResumeGrant): void {
    if (sub.interruptedWhileDeclaring() || !sub.relaying || this.phase === 'closed') return;
    this.deps.metrics.resyncs.inc({ reason });
    this.outbox.emit(ServerEvent.Resync, { id: sub.id, reason, ...(resume && { resume }) });
  }

  /**
   * A resumable subscription's queue was replaced by an empty one: what was
   * unconfirmed belonged to the old queue, the takeover hook moves to the new
   * name, and the client reloads — with the new claim, so that a client that
   * misses this notice in a cut resumes the old, deleted queue and reloads too.
   */
  private renewed(sub: Subscription, reason: RenewReason): void {
    sub.forgetUnconfirmed();
    const consumer = sub.resumableConsumer;
    if (consumer) this.holdQueue(sub, consumer.queue);
    this.resync(sub, reason, consumer ? this.grant(consumer) : undefined);
  }

  private onConsumerEnded(sub: Subscription, reason: ConsumerEndReason, detail: string): void {
    const from = sub.beginEnd('broker');
    if (from === null) return;
    sub.log.warn({ reason, detail }, 'subscription ended by the broker');
    if (from === 'declaring') return; // its subscribe finishes it, and answers
    this.releaseQueue(sub);
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

  /** Ends an acknowledged subscription: nothing relayed from now on, its queue deleted (or, `away`, detached). */
  private async stop(sub: Subscription, cause: EndCause): Promise<void> {
    if (sub.beginEnd(cause) !== 'live') return;
    this.releaseQueue(sub);
    this.subscriptions.delete(sub.id);
    this.deps.metrics.subscriptions.dec();
    await sub.finish();
  }

  private async close(reason: string, departure: Departure): Promise<void> {
    if (this.phase === 'closed') return;
    this.phase = 'closed';
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    this.outbox.dispose();
    this.deps.metrics.connections.dec();
    const causeFor = (sub: Subscription): EndCause => (departure === 'away' && sub.resumable ? 'away' : 'closed');
    for (const sub of this.declaring) sub.beginEnd(causeFor(sub)); // each subscribe finishes its own
    const subs = [...this.subscriptions.values()];
    await Promise.all(subs.map((sub) => this.stop(sub, causeFor(sub))));
    const kept = subs.filter((sub) => causeFor(sub) === 'away').length;
    this.log.debug({ reason, subscriptions: subs.length, kept }, kept > 0 ? 'disconnected; resumable queues kept for the resume window, the others deleted' : 'disconnected; queues deleted');
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
      // Like a cut: a client that comes back with a valid token may resume (authorized again then).
      this.disconnect('away');
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

/** What a resume that found the queue unusable tells the client. */
const RESUME_FAILURES: Record<Exclude<ResumeOutcome['kind'], 'resumed'>, ResyncReason> = {
  missing: ResyncReason.Expired,
  overflow: ResyncReason.Overflow,
  lost: ResyncReason.Lost,
  busy: ResyncReason.Interrupted,
};

/** Refreshes a socket may send per second (and in a burst). */
export const REFRESHES_PER_SECOND = 2;

function sameTopics(a: readonly string[], b: readonly string[]): boolean {
  if (a === b) return true;
  const set = new Set(a);
  return a.length === b.length && b.every((topic) => set.has(topic)) && new Set(b).size === set.size;
}
