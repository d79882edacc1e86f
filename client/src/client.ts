import {
  ClientEvent,
  ErrorCode,
  patternError,
  ResyncReason,
  ServerEvent,
  topicMatches,
  type Delivery,
  type ResyncNotice,
  type RevokedNotice,
  type SubscribeAck,
  type SubscribeRequest,
  type UnsubscribedNotice,
} from '@topicgate/shared';
import { io } from 'socket.io-client';
import { ClientErrorCode, SubscriptionEndReason } from './codes.js';
import { DEFAULTS, withDefaults, type WithDefaults } from './defaults.js';
import { Emitter } from './emitter.js';
import { TopicgateError } from './errors.js';
import { LiveCollection } from './live-collection.js';
import { LiveResource } from './live-resource.js';
import { LogTail } from './log-tail.js';
import { isResumeGrant, ReceiptScheduler, type ReceiptTarget, type ResumePlan } from './resume-tracker.js';
import { Subscription, type AckOutcome, type SubscriptionHub } from './subscription.js';
import { TokenRefresh } from './token-refresh.js';
import type {
  AnyTopics,
  CheckedPattern,
  TopicBody,
  TopicKey,
  TopicMessage,
  TopicTemplate,
} from './typed-topics.js';
import type {
  ClientEvents,
  ClientOptions,
  ConnectionState,
  LiveCollectionOptions,
  LiveResourceOptions,
  LogTailOptions,
  Message,
  MessageSource,
  SocketFactory,
  SocketLike,
} from './types.js';
import { Backoff, isObject, toArray } from './utils.js';

/** What arrived for a subscription id whose `subscribe` ack has not been processed yet. */
type HeldEvent =
  | { kind: 'messages'; delivery: Delivery }
  | { kind: 'resync'; notice: ResyncNotice }
  | { kind: 'unsubscribed'; notice: UnsubscribedNotice };

/** More than this many events for not-yet-acknowledged ids means a broken gateway; the excess is dropped (seq shows the gap). */
const MAX_HELD_PER_ID = 10_000;

/** One pattern, or several. */
type Patterns<T, P extends string> = CheckedPattern<T, P> | readonly CheckedPattern<T, P>[];

/** The option that `client.liveCollection`, `liveResource` and `logTail` add to their class's. */
interface PatternOption<T, P extends string> {
  /** Pattern(s) to subscribe to, one subscription each; the view reloads when any of them resyncs. Required. */
  pattern: Patterns<T, P>;
}

/**
 * Without `apply`, the message body becomes the item, so every body the
 * pattern can receive must be an item; with bodies of another shape, `apply`
 * is required.
 */
type ApplyRequired<Item, M extends { body: unknown }> = [M['body']] extends [Item]
  ? unknown
  : { apply: (prev: Item | undefined, message: M) => Item | null | undefined };

/**
 * A connection to a topicgate gateway, typed by the application's topic map.
 *
 * @example
 * interface Topics {
 *   'builds.{id}.finished': { id: number; version: number; result: string };
 * }
 * const client = createClient<Topics>({ url: 'https://live.example.com', getToken });
 * client.subscribe('builds.*.finished', ({ key, body }) => console.log(key, body.result));
 */
export class Client<T extends object = AnyTopics> extends Emitter<ClientEvents> {
  readonly #options: WithDefaults<ClientOptions, typeof DEFAULTS.client>;
  readonly #socket: SocketLike;
  #state: ConnectionState = 'disconnected';
  /** Whether the application wants a connection (connect() called, disconnect()/close() not). */
  #wanted = false;
  #closed = false;

  /** Every subscription that is not over, connected or not. */
  readonly #subscriptions = new Set<Subscription<any>>();
  /** Gateway id → subscription, for the current socket only. */
  readonly #byId = new Map<string, Subscription<any>>();
  /** Events for ids whose ack is still in flight (docs/protocol.md §8, §14.1: they can arrive in the same tick, or first). */
  readonly #held = new Map<string, HeldEvent[]>();
  #acksInFlight = 0;
  /** Bumped whenever the socket goes away, so that acks from an older socket are recognised. */
  #epoch = 0;
  /** Counts socket.io's handshake attempts: only the latest may be answered with a token. */
  #handshakes = 0;
  /** The gateway said `revoked`: the disconnect that follows is reported with reason 'revoked'. */
  #revoked = false;

  readonly #tokens: TokenRefresh;
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  readonly #reconnectBackoff: Backoff;

  /** `received` receipts for resumable subscriptions on the current socket. */
  readonly #receipts: ReceiptScheduler;
  /** The `pagehide` listener, when there is a window to listen on. */
  #pageHide: ((event: Event) => void) | undefined;

  readonly #hub: SubscriptionHub = {
    send: (sub) => this.#sendSubscribe(sub),
    release: (sub, id) => this.#release(sub, id),
  };

  constructor(options: ClientOptions) {
    super();
    if (typeof options?.url !== 'string' || options.url === '') {
      throw new TypeError('createClient: `url` (the gateway URL) is required');
    }
    const opts = withDefaults(options, DEFAULTS.client);
    this.#options = opts;
    this.#tokens = new TokenRefresh(opts, {
      epoch: () => this.#epoch,
      connected: () => this.#socket.connected,
      sendRefresh: (token, ack) => this.#socket.emit(ClientEvent.Refresh, { token }, ack),
      error: (error) => this.emit('error', error),
    });
    this.#reconnectBackoff = new Backoff(opts.reconnectDelay, opts.reconnectDelayMax);
    this.#receipts = new ReceiptScheduler({
      targets: () => this.#receiptTargets(),
      connected: () => this.#socket.connected,
      send: (event, request, ack) => this.#socket.emit(event, request, ack),
    });

    const factory: SocketFactory = opts.io ?? io;
    this.#socket = factory(opts.url, {
      autoConnect: false,
      // Each client owns its connection: socket.io would otherwise share one between clients of the same URL.
      forceNew: true,
      reconnection: true,
      reconnectionDelay: opts.reconnectDelay,
      reconnectionDelayMax: opts.reconnectDelayMax,
      randomizationFactor: 0.5,
      path: opts.path,
      ...(opts.transports === undefined ? {} : { transports: opts.transports }),
      ...opts.socketOptions,
      // Called on every handshake, reconnects included, so each one carries a usable token.
      auth: (cb) => this.#authenticate(cb),
    });
    this.#listen();
    this.#listenForPageHide();
    if (opts.autoConnect) this.connect();
  }

  /** The connection state; watch it with `on('state', …)`. */
  get state(): ConnectionState {
    return this.#state;
  }

  /** Opens the connection (done at creation unless `autoConnect: false`); subscriptions are made once connected. */
  connect(): void {
    if (this.#closed) throw new Error('topicgate client is closed');
    this.#wanted = true;
    if (this.#socket.connected) return;
    this.#setState('connecting');
    if (!this.#socket.active) this.#socket.connect();
  }

  /** Closes the connection but keeps every subscription; `connect()` makes them again (with a resync). */
  disconnect(): void {
    this.#wanted = false;
    clearTimeout(this.#reconnectTimer);
    // An intentional end: the gateway deletes the queues at once, so there is nothing to resume.
    for (const sub of this.#subscriptions) sub._resume.forget();
    this.#tokens.stop();
    // Emits 'disconnect' synchronously when connected; otherwise only stops the attempts.
    this.#socket.disconnect();
    this.#interruptAll();
    this.#setState('disconnected');
  }

  /** Ends every subscription, closes the connection and releases timers. The client cannot be reused. */
  close(): void {
    if (this.#closed) return;
    for (const sub of [...this.#subscriptions]) sub._close();
    this.#subscriptions.clear();
    this.disconnect();
    this.#closed = true;
    if (this.#pageHide !== undefined) {
      (globalThis as Partial<PageEvents>).removeEventListener?.('pagehide', this.#pageHide);
      this.#pageHide = undefined;
    }
  }

  /**
   * Subscribes to a routing-key pattern (`*` one word, `#` zero or more). The
   * handler receives every message, typed by the topics the pattern can
   * match; narrow on `key` to narrow `body`. Messages that arrive while the
   * subscription is being made again after a reconnect are lost: listen to
   * `resync` on the returned subscription to reload what you derived. (On a
   * gateway with a resume window nothing is lost and no `resync` comes, unless
   * the resume could not be exact; see the README's "Resume".)
   *
   * @throws TypeError when the pattern is not a valid pattern.
   * @example
   * const sub = client.subscribe('builds.#', (m) => {
   *   if (client.isTopic(m, 'builds.{id}.finished')) console.log(m.body.result);
   * });
   * sub.on('resync', reloadEverything);
   * sub.unsubscribe();
   */
  subscribe<P extends string>(
    pattern: CheckedPattern<T, P>,
    handler?: (message: TopicMessage<T, P>) => void,
  ): Subscription<TopicMessage<T, P>> {
    if (this.#closed) throw new Error('topicgate client is closed');
    const invalid = patternError(pattern);
    if (invalid !== null) throw new TypeError(invalid);
    const sub = new Subscription<TopicMessage<T, P>>(
      this.#hub,
      pattern,
      this.#options.resubscribeDelay,
      this.#options.resubscribeDelayMax,
    );
    if (handler !== undefined) sub.on('message', handler);
    this.#subscriptions.add(sub);
    this.#sendSubscribe(sub);
    return sub;
  }

  /**
   * Whether `message` was published under `template` (a key of the topic
   * map); narrows its type, for handlers of wildcard patterns.
   *
   * @example
   * client.subscribe('builds.#', (m) => {
   *   if (client.isTopic(m, 'builds.{id}.finished')) showResult(m.body.result);
   * });
   */
  isTopic<K extends TopicTemplate<T>>(
    message: Message<string, unknown>,
    template: K,
  ): message is Message<TopicKey<K>, T[K]> {
    return topicMatches(templatePattern(template), message.key);
  }

  /**
   * A message source over one or more patterns, for `LiveCollection`,
   * `LiveResource`, `LogTail` or your own consumer. Nothing is subscribed
   * until it is opened.
   */
  source<P extends string>(pattern: Patterns<T, P>): MessageSource<TopicMessage<T, P>> {
    const patterns = toArray(pattern) as readonly string[];
    for (const p of patterns) {
      const invalid = patternError(p);
      if (invalid !== null) throw new TypeError(invalid);
    }
    return {
      open: (sink) => {
        const waiting = new Set<Subscription<TopicMessage<T, P>>>();
        let ended = false;
        const subs = patterns.map((p) => {
          const sub = this.subscribe<P>(p as CheckedPattern<T, P>, (m) => sink.message(m));
          waiting.add(sub);
          sub.on('subscribed', () => {
            if (waiting.delete(sub) && waiting.size === 0) sink.ready();
          });
          // A resync before every pattern is live needs no reload: the first load has not started.
          sub.on('resync', ({ reason }) => {
            if (waiting.size === 0) sink.resync(reason);
          });
          sub.on('error', (error) => sink.error(error));
          sub.on('unsubscribed', ({ reason }) => {
            // 'rejected' came with an error event already; ending by the application is not news.
            if (reason === SubscriptionEndReason.Forbidden) {
              sink.error(new TopicgateError(ErrorCode.Forbidden, `the gateway ended the subscription to ${p}: the token no longer allows it`));
            }
            // client.close(): the view must stop too (its REST retries included), once.
            if (reason === SubscriptionEndReason.Closed && !ended) {
              ended = true;
              sink.end?.();
            }
          });
          return sub;
        });
        return () => {
          for (const sub of subs) sub.unsubscribe();
        };
      },
    };
  }

  /**
   * A collection kept equal to the REST API's: subscribes first, then loads,
   * then applies only messages newer than the snapshot; reloads (coalesced,
   * with backoff) on version gaps, regressions, invalid transitions, resyncs
   * and reconnects.
   *
   * @example
   * const builds = client.liveCollection({
   *   pattern: 'builds.*.*',
   *   load: async (signal) => (await fetch('/api/builds', { signal })).json(),
   * });
   * builds.on('change', (items) => render(items));
   */
  liveCollection<P extends string, Item = TopicBody<T, P>>(
    options: PatternOption<T, P> & LiveCollectionOptions<Item, TopicMessage<T, P>> &
      ApplyRequired<Item, TopicMessage<T, P>>,
  ): LiveCollection<Item, TopicMessage<T, P>> {
    return new LiveCollection({ ...options, source: this.source<P>(options.pattern) });
  }

  /**
   * One resource kept equal to the REST API's, like `liveCollection`.
   *
   * @example
   * const build = client.liveResource({
   *   pattern: 'builds.42.*',
   *   load: async (signal) => (await fetch('/api/builds/42', { signal })).json(),
   * });
   * build.on('change', (value) => render(value));
   */
  liveResource<P extends string, Item = TopicBody<T, P>>(
    options: PatternOption<T, P> & LiveResourceOptions<Item, TopicMessage<T, P>> &
      ApplyRequired<Item, TopicMessage<T, P>>,
  ): LiveResource<Item, TopicMessage<T, P>> {
    return new LiveResource({ ...options, source: this.source<P>(options.pattern) });
  }

  /**
   * The end of a log, in line order, with gaps filled over REST and duplicates
   * ignored. Append messages carry `{ first, lines }` (see `LogLines`).
   *
   * @example
   * const tail = client.logTail({
   *   pattern: 'logs.7.append',
   *   load: async ({ from, limit }, signal) =>
   *     (await fetch(`/api/logs/7/lines?limit=${limit}${from === undefined ? '' : `&from=${from}`}`, { signal })).json(),
   * });
   * tail.on('change', (change) => paint(change));
   */
  logTail<P extends string>(
    options: PatternOption<T, P> & LogTailOptions<TopicMessage<T, P>>,
  ): LogTail<TopicMessage<T, P>> {
    return new LogTail({ ...options, source: this.source<P>(options.pattern) });
  }

  // -------------------------------------------------------------------------
  // Socket events

  #listen(): void {
    const socket = this.#socket;
    socket.on('connect', () => this.#onConnect());
    socket.on('disconnect', (reason) => this.#onDisconnect(reason));
    socket.on('connect_error', (error) => this.#onConnectError(error));
    socket.on(ServerEvent.Messages, (batch) => this.#onMessages(batch));
    socket.on(ServerEvent.Resync, (notice) => this.#onNotice({ kind: 'resync', notice }));
    socket.on(ServerEvent.Unsubscribed, (notice) => this.#onNotice({ kind: 'unsubscribed', notice }));
    socket.on(ServerEvent.Revoked, (notice) => this.#onRevoked(notice));
  }

  /**
   * An operator revoked the token's subject (docs/protocol.md §6.5); the
   * gateway disconnects right after. The token is dropped: the next handshake
   * asks `getToken` for a new one, and without `getToken` the client stops,
   * since the gateway would refuse the same token again.
   */
  #onRevoked(notice: RevokedNotice): void {
    const message = isObject(notice) && typeof notice.message === 'string' ? notice.message : 'access revoked by an operator';
    this.#revoked = true;
    this.#tokens.drop();
    if (!this.#tokens.renewable) this.#wanted = false;
    this.emit('error', new TopicgateError(ErrorCode.Revoked, message));
  }

  #onConnect(): void {
    this.#reconnectBackoff.reset();
    this.#setState('connected');
    this.emit('connected');
    this.#tokens.schedule();
    for (const sub of this.#subscriptions) this.#sendSubscribe(sub);
  }

  #onDisconnect(socketReason: string): void {
    const reason = this.#revoked ? 'revoked' : socketReason;
    this.#revoked = false;
    // Resumable subscriptions survive this on the gateway for its window, counted from now.
    const now = Date.now();
    for (const sub of this.#subscriptions) sub._resume.away(now);
    this.#interruptAll();
    this.#tokens.stop();
    if (!this.#wanted) {
      this.#setState('disconnected');
    } else {
      this.#setState('connecting');
      // socket.io reconnects by itself after transport failures, not after the gateway ended the socket.
      if (!this.#socket.active) this.#scheduleReconnect();
    }
    this.emit('disconnected', { reason });
  }

  #onConnectError(error: Error & { data?: unknown }): void {
    if (!this.#wanted) return;
    const data = error.data;
    if (isObject(data) && data['code'] === ErrorCode.Unauthorized) {
      const message = typeof data['message'] === 'string' ? data['message'] : error.message;
      this.emit('error', new TopicgateError(ErrorCode.Unauthorized, message));
      if (!this.#tokens.renewable) {
        // The same token would be refused again.
        this.#wanted = false;
        this.#setState('disconnected');
        return;
      }
      this.#tokens.drop();
    } else {
      this.emit('error', new TopicgateError(ClientErrorCode.Transport, error.message, { cause: error }));
    }
    if (!this.#wanted) return;
    if (this.#socket.active) {
      this.#setState('connecting');
    } else {
      this.#setState('connecting');
      this.#scheduleReconnect();
    }
  }

  #scheduleReconnect(): void {
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      if (this.#wanted && !this.#socket.connected && !this.#socket.active) this.#socket.connect();
    }, this.#reconnectBackoff.next());
  }

  #interruptAll(): void {
    this.#epoch++;
    this.#receipts.interrupted();
    this.#byId.clear();
    this.#held.clear();
    this.#acksInFlight = 0;
    for (const sub of this.#subscriptions) sub._interrupted();
  }

  // -------------------------------------------------------------------------
  // Subscriptions on the wire

  #sendSubscribe(sub: Subscription<any>): void {
    // socket.io buffers emits while disconnected and sends them on reconnect; the
    // connect handler subscribes everything anyway, so a buffered one would be a duplicate.
    if (!this.#socket.connected || !sub._isActive()) return;
    const epoch = this.#epoch;
    const attempt = sub._beginAttempt();
    this.#acksInFlight++;
    const plan: ResumePlan = this.#options.resume ? sub._resume.plan(Date.now()) : { kind: 'fresh' };
    const request: SubscribeRequest = { pattern: sub.pattern };
    // Always asked for: a gateway without a resume window ignores it and grants nothing.
    if (this.#options.resume) request.resumable = true;
    if (plan.kind === 'resume') request.resume = plan.request;
    // The ack callback runs in the same task as the packet; registering the
    // subscription inside it, not after an await, is what makes a batch that
    // follows in the same tick find it.
    this.#socket.emit(ClientEvent.Subscribe, request, (ack: SubscribeAck) => {
      if (epoch !== this.#epoch) return;
      this.#acksInFlight--;
      const ok = isObject(ack) && ack.ok === true && typeof ack.id === 'string';
      const held = ok ? this.#held.get(ack.id) : undefined;
      if (ok) this.#held.delete(ack.id);
      if (this.#acksInFlight === 0) this.#held.clear();

      if (!sub._isCurrent(attempt)) {
        // Unsubscribed (or re-sent) while the request was on its way: end the orphan on the gateway.
        if (ok) this.#socket.emit(ClientEvent.Unsubscribe, { id: ack.id }, () => {});
        return;
      }
      if (ok) {
        this.#byId.set(ack.id, sub);
        const outcome = this.#resumeOutcome(sub, plan, ack);
        sub._acked(ack.id, outcome);
        if (held !== undefined) for (const event of held) this.#dispatch(sub, event);
        // Early deliveries just handed over, or ones kept from before the cut, are still unconfirmed.
        if (sub._resume.resumable) this.#receipts.poke();
        return;
      }
      const error =
        isObject(ack) && ack.ok === false && isObject(ack.error)
          ? ack.error
          : { code: ErrorCode.BadRequest, message: 'malformed subscribe acknowledgement from the gateway' };
      if (sub._rejected(error)) {
        this.#subscriptions.delete(sub);
        // Refused for good: said here too, where an application that never listens to subscriptions still hears it.
        this.emit('error', new TopicgateError(error.code, `subscribing to "${sub.pattern}" was refused: ${error.message}`));
      }
    });
  }

  /**
   * Brings the subscription's resume position up to date with an `ok` ack and
   * says how to report it: resumed (no resync), a resume the gateway refused
   * (its reason), one the client knew had expired, or a plain resubscribe.
   */
  #resumeOutcome(sub: Subscription<any>, plan: ResumePlan, ack: SubscribeAck & { ok: true }): AckOutcome {
    const grant = isResumeGrant(ack.resume) ? ack.resume : undefined;
    if (plan.kind === 'resume' && ack.resumed === true) {
      sub._resume.resumed(grant, ack.settled);
      return { resumed: true };
    }
    sub._resume.granted(grant);
    if (plan.kind === 'resume') return { reason: isResyncReason(ack.reason) ? ack.reason : ResyncReason.Expired };
    if (plan.kind === 'expired') return { reason: ResyncReason.Expired };
    return {};
  }

  /** The resumable subscriptions on the current socket, for `received`. */
  *#receiptTargets(): Iterable<ReceiptTarget> {
    for (const sub of this.#subscriptions) {
      if (sub._resume.resumable) yield { id: sub.id, tracker: sub._resume };
    }
  }

  /**
   * A tab that is closed (not put in the back/forward cache) disconnects at
   * once: the gateway then deletes its resumable queues instead of keeping
   * them for a resume that will never come. Without a window (SSR, Node)
   * there is nothing to listen to.
   */
  #listenForPageHide(): void {
    const target = globalThis as Partial<PageEvents>;
    if (typeof target.addEventListener !== 'function') return;
    this.#pageHide = (event) => {
      if ((event as Event & { persisted?: boolean }).persisted === false) this.close();
    };
    target.addEventListener('pagehide', this.#pageHide);
  }

  #release(sub: Subscription<any>, id: string | undefined): void {
    this.#subscriptions.delete(sub);
    if (id === undefined || this.#byId.get(id) !== sub) return;
    this.#byId.delete(id);
    if (this.#socket.connected) this.#socket.emit(ClientEvent.Unsubscribe, { id }, () => {});
  }

  #onMessages(batch: Delivery[]): void {
    if (!Array.isArray(batch)) return;
    let resumable = false;
    for (const delivery of batch) {
      const sub = this.#byId.get(delivery.id);
      if (sub !== undefined) {
        sub._deliver(delivery);
        resumable ||= sub._resume.resumable;
      } else this.#hold(delivery.id, { kind: 'messages', delivery });
    }
    // The broker sends a resumable subscription only its prefetch of unconfirmed deliveries: confirm soon.
    if (resumable) this.#receipts.poke();
  }

  #onNotice(event: HeldEvent & { kind: 'resync' | 'unsubscribed' }): void {
    const id = event.notice?.id;
    if (typeof id !== 'string') return;
    const sub = this.#byId.get(id);
    if (sub === undefined) this.#hold(id, event);
    else this.#dispatch(sub, event);
  }

  /** Keeps events for ids that a pending ack may still name; anything else belongs to a subscription already left. */
  #hold(id: string, event: HeldEvent): void {
    if (this.#acksInFlight === 0 || typeof id !== 'string') return;
    let list = this.#held.get(id);
    if (list === undefined) this.#held.set(id, (list = []));
    if (list.length < MAX_HELD_PER_ID) list.push(event);
  }

  #dispatch(sub: Subscription<any>, event: HeldEvent): void {
    switch (event.kind) {
      case 'messages':
        sub._deliver(event.delivery);
        return;
      case 'resync':
        // The queue was replaced: the new one starts after everything relayed so far, under a new claim.
        if (isResumeGrant(event.notice.resume) && sub._resume.resumable) sub._resume.replaced(event.notice.resume);
        sub._resync(event.notice.reason);
        return;
      case 'unsubscribed': {
        const id = event.notice.id;
        if (this.#byId.get(id) === sub) this.#byId.delete(id);
        sub._endedByServer(event.notice.reason);
        if (!sub._isActive()) this.#subscriptions.delete(sub);
        return;
      }
    }
  }

  // -------------------------------------------------------------------------
  // Handshake

  /** socket.io's `auth` callback: hands over a token that will not expire during the handshake. */
  #authenticate(cb: (data: object) => void): void {
    const tokens = this.#tokens;
    const current = tokens.token;
    const handshake = ++this.#handshakes;
    if (!tokens.renewable || (current !== undefined && !tokens.expiresSoon(current))) {
      cb(current === undefined ? {} : { token: current });
      return;
    }
    // An attempt that is over — disconnect(), close(), or a transport that dropped
    // and was opened again meanwhile — stays unanswered: answering it as well
    // would open a second connection on the new transport.
    const answer = (data: object) => {
      if (this.#wanted && handshake === this.#handshakes) cb(data);
    };
    tokens.fetch().then(
      (token) => answer({ token }),
      // The gateway will refuse and the reconnect backoff applies; getToken is asked again then.
      () => answer(current === undefined ? {} : { token: current }),
    );
  }

  #setState(state: ConnectionState): void {
    const previous = this.#state;
    if (previous === state) return;
    this.#state = state;
    this.emit('state', state, previous);
  }
}

/** The part of a browser window the client listens to; absent on servers. */
interface PageEvents {
  addEventListener(type: 'pagehide', listener: (event: Event) => void): void;
  removeEventListener(type: 'pagehide', listener: (event: Event) => void): void;
}

const RESYNC_REASONS: ReadonlySet<unknown> = new Set(Object.values(ResyncReason));
function isResyncReason(value: unknown): value is ResyncReason {
  return RESYNC_REASONS.has(value);
}

/** `builds.{id}.finished` → `builds.*.finished`; memoised, templates are few and reused. */
const templatePatterns = new Map<string, string>();
function templatePattern(template: string): string {
  let pattern = templatePatterns.get(template);
  if (pattern === undefined) {
    pattern = template
      .split('.')
      .map((word) => (word.startsWith('{') && word.endsWith('}') ? '*' : word))
      .join('.');
    templatePatterns.set(template, pattern);
  }
  return pattern;
}

/**
 * Creates a client; pass your topic map to type every handler.
 *
 * @example
 * const client = createClient<Topics>({ url: 'https://live.example.com', getToken: fetchToken });
 */
export function createClient<T extends object = AnyTopics>(options: ClientOptions): Client<T> {
  return new Client<T>(options);
}
