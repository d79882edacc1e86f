/**
 * The whole public surface of the SDK in one file: options (each ending with
 * its default), events, contexts and the message and source shapes.
 * Protocol payloads and codes come from `@topicgate/shared`.
 */
import type { ClientToServerEvents, JsonObject, ServerToClientEvents } from '@topicgate/shared';
import type { ManagerOptions, SocketOptions } from 'socket.io-client';
import type { LiveReloadReason, LogFetchReason, SubscriptionEndReason, SubscriptionResyncReason } from './codes.js';
import type { TopicgateError } from './errors.js';

// ---------------------------------------------------------------------------
// Messages

/** One message as a handler sees it. */
export interface Message<K extends string = string, B = JsonObject> {
  /** The routing key it was published with, e.g. `builds.42.finished`. */
  readonly key: K;
  /** The JSON object as published. */
  readonly body: B;
  /** Per-subscription counter from the gateway (1, 2, 3, …); restarts when the subscription is made again, continues when it is resumed. */
  readonly seq: number;
}

// ---------------------------------------------------------------------------
// Client

/** 'connecting' covers the first attempt and every reconnect; 'disconnected' means no attempt is under way. */
export type ConnectionState = 'connecting' | 'connected' | 'disconnected';

export interface ClientOptions {
  /** Gateway URL, e.g. `https://live.example.com` (the socket.io endpoint is at `path`). Required. */
  url: string;
  /** A JWT sent with the handshake; without `getToken` it cannot be renewed. Default: undefined (no token, accepted only by a gateway in insecure mode). */
  token?: string;
  /** Fetches a JWT: before connecting when there is no usable token, shortly before `exp` (then sent with `refresh`), and after the gateway refused one. Default: undefined. */
  getToken?: () => Promise<string>;
  /** How long before the token's `exp` a new one is fetched, in ms. Default: 30000. */
  refreshBefore?: number;
  /** Connect when the client is created; otherwise call `connect()`. Default: true. */
  autoConnect?: boolean;
  /** First reconnect delay in ms; it doubles on each failure up to `reconnectDelayMax`, with jitter. Default: 500. */
  reconnectDelay?: number;
  /** Longest reconnect delay in ms. Default: 20000. */
  reconnectDelayMax?: number;
  /** First delay in ms before a subscription refused with `unavailable` or `limit_exceeded` is tried again; doubles with jitter. Default: 1000. */
  resubscribeDelay?: number;
  /** Longest delay in ms between such subscription retries. Default: 30000. */
  resubscribeDelayMax?: number;
  /** Path of the socket.io endpoint on the gateway. Default: '/socket.io'. */
  path?: string;
  /** socket.io transports, in the order tried. Default: socket.io-client's (['polling', 'websocket']). */
  transports?: ManagerOptions['transports'];
  /** Further socket.io-client options (`withCredentials`, `extraHeaders`, …), applied over the SDK's own except `auth`. Default: {}. */
  socketOptions?: Partial<ManagerOptions & SocketOptions>;
  /**
   * Ask for resumable subscriptions: on a gateway with a resume window, a
   * subscription cut off by a network failure is taken up on reconnect with
   * exactly the messages missed, and views do not reload. A gateway without
   * a window ignores the request. Default: true.
   */
  resume?: boolean;
  /** Creates the socket; tests pass an in-process fake gateway's factory here. Default: socket.io-client's `io`. */
  io?: SocketFactory;
}

/** Client events; `client.on('state', (state, previous) => …)`. */
export interface ClientEvents {
  /** The connection state changed. */
  state(state: ConnectionState, previous: ConnectionState): void;
  /** The handshake succeeded (first connect or a reconnect); subscriptions are being made again. */
  connected(): void;
  /** The socket went away; `reason` is socket.io's (`transport close`, `io server disconnect`, …). */
  disconnected(context: DisconnectedContext): void;
  /**
   * Something failed that the application may want to show: `unauthorized`
   * (handshake or refresh refused, with the gateway's message), `revoked`
   * (an operator revoked the token's subject: the socket is closed, and the
   * client reconnects only with a new token from `getToken`),
   * `token_unavailable`, `transport`, and a subscription refused for good
   * (`forbidden`, `invalid_pattern`, …; the message names the pattern). The client keeps retrying unless it
   * cannot succeed (a static token that the gateway refused).
   */
  error(error: TopicgateError): void;
}

export interface DisconnectedContext {
  /** 'revoked' (an operator revoked the token's subject; an `error` with code `revoked` came first), or socket.io's reason: 'io server disconnect' (the gateway ended it, e.g. an expired token), 'io client disconnect', 'transport close', 'ping timeout', … */
  reason: string;
}

// ---------------------------------------------------------------------------
// Subscriptions

/** 'subscribing' until the gateway acknowledges (and again while reconnecting); 'unsubscribed' is final. */
export type SubscriptionState = 'subscribing' | 'subscribed' | 'unsubscribed';

/** Subscription events; `sub.on('resync', ({ reason }) => reload())`. */
export interface SubscriptionEvents<M> {
  /** Every delivery, in order; the handler given to `subscribe` is one of these listeners. */
  message(message: M): void;
  /** The gateway acknowledged: messages published from now on are delivered. */
  subscribed(context: SubscribedContext): void;
  /** Messages may have been lost before this point: reload what you derived from them. */
  resync(context: ResyncContext): void;
  /** The subscription ended for good. */
  unsubscribed(context: UnsubscribedContext): void;
  /** A subscribe attempt failed; `unavailable` and `limit_exceeded` are retried, the rest end the subscription. */
  error(error: TopicgateError): void;
  /** The state changed. */
  state(state: SubscriptionState, previous: SubscriptionState): void;
}

export interface SubscribedContext {
  /** The gateway's id for this subscription on the current socket. */
  id: string;
  /** True when this is not the first acknowledgement (after a reconnect or a restart); a `resync` follows unless `resumed`. */
  resubscribed: boolean;
  /** True when the gateway resumed the subscription after a reconnect: nothing was lost, `seq` continues, no `resync` follows. */
  resumed: boolean;
}

export interface ResyncContext {
  reason: SubscriptionResyncReason;
}

export interface UnsubscribedContext {
  reason: SubscriptionEndReason;
  /** The gateway's refusal when `reason` is 'rejected'. */
  error?: TopicgateError;
}

// ---------------------------------------------------------------------------
// Message sources: what live collections and log tails consume

/**
 * Anything that delivers messages and says when they may have been lost. The
 * client makes one from patterns (`client.source('builds.*.*')`); tests and
 * other transports can implement it directly.
 */
export interface MessageSource<M> {
  /** Starts delivering to `sink`; returns a function that stops and releases everything. */
  open(sink: SourceSink<M>): () => void;
}

export interface SourceSink<M> {
  /** Called once, when every message published from now on will be delivered: the moment to load a snapshot. */
  ready(): void;
  /** A message, in the order received. */
  message(message: M): void;
  /** Messages may have been lost; called only after `ready`, and only once delivery is live again. */
  resync(reason: SubscriptionResyncReason): void;
  /** A failure worth showing; delivery goes on unless the source says otherwise. */
  error(error: TopicgateError): void;
  /** The source is over for good (its client was closed): nothing more will come, and the view closes. */
  end?(): void;
}

// ---------------------------------------------------------------------------
// Live collections and live resources

/** 'subscribing' until the source is live, 'loading' while a snapshot is loaded (or retried), 'live' after. */
export type LiveStatus = 'subscribing' | 'loading' | 'live' | 'closed';

/** The id of an item in a live collection. */
export type ItemId = string | number;

export interface LiveEvents<S> {
  /** The value changed; emitted at most once per microtask, after a whole batch was applied. */
  change(value: S): void;
  /** `status` changed. */
  status(status: LiveStatus, previous: LiveStatus): void;
  /** A load failed (`load_failed`, retried with backoff) or the source reported a failure. */
  error(error: TopicgateError): void;
  /**
   * The snapshot will be loaded again, and why: a resync of the source or
   * something the messages showed. Not emitted for the first load; reasons
   * that arrive while a load is under way share the next one.
   */
  reload(reason: SubscriptionResyncReason | LiveReloadReason): void;
}

/** Options shared by live collections and live resources. `Item` is the state, `M` the message. */
export interface LiveOptionsBase<Item, M extends Message<string, unknown>> {
  /** A resource's version; messages at or below the version in hand are ignored, a skipped version triggers a reload. Default: a numeric `version` property, else none. */
  version?: (value: Item | M['body']) => number | undefined;
  /** Whether `next` may follow `prev`, for bodies without a version: a live message failing it triggers a reload. Default: every transition is valid. */
  isValidTransition?: (prev: Item, next: Item) => boolean;
  /** The item after `message`: return `null` to remove it and `undefined` to ignore the message. Default: the body is the whole new item. */
  apply?: (prev: Item | undefined, message: M) => Item | null | undefined;
  /** Most messages held while a snapshot loads; past it they are dropped and another load follows. Default: 10000. */
  maxHeld?: number;
  /** First delay in ms before a failed load is retried; doubles with jitter. Default: 1000. */
  retryDelay?: number;
  /** Longest delay in ms between load retries. Default: 30000. */
  retryDelayMax?: number;
}

export interface LiveCollectionOptions<Item, M extends Message<string, unknown>> extends LiveOptionsBase<Item, M> {
  /** Loads the snapshot over REST: the whole collection, as it is now. Abort the request on `signal`. Required. */
  load: (signal: AbortSignal) => Promise<readonly Item[]>;
  /** The id of an item or of the item a message is about; messages without one are ignored. Default: the `id` property. */
  id?: (value: Item | M['body']) => ItemId | undefined;
  /** Orders `items`. Default: snapshot order, then new items in arrival order. */
  sort?: (a: Item, b: Item) => number;
}

export interface LiveResourceOptions<Item, M extends Message<string, unknown>> extends LiveOptionsBase<Item, M> {
  /** Loads the resource over REST; `null` when it does not exist (yet). Abort the request on `signal`. Required. */
  load: (signal: AbortSignal) => Promise<Item | null>;
}

/** `new LiveCollection(…)`: the options plus a source (`client.liveCollection` makes the source from patterns). */
export interface LiveCollectionInit<Item, M extends Message<string, unknown>> extends LiveCollectionOptions<Item, M> {
  /** Where the messages come from; opened at once, closed by `close()`. Required. */
  source: MessageSource<M>;
}

/** `new LiveResource(…)`: the options plus a source. */
export interface LiveResourceInit<Item, M extends Message<string, unknown>> extends LiveResourceOptions<Item, M> {
  /** Where the messages come from; opened at once, closed by `close()`. Required. */
  source: MessageSource<M>;
}

// ---------------------------------------------------------------------------
// Log tails

/**
 * A run of consecutive log lines: the body of every append message and the
 * answer of the REST endpoint. `first` is the 0-based number of `lines[0]`.
 *
 * @example { first: 120, lines: ['compiling…', 'done'] } // lines 120 and 121
 */
export interface LogLines {
  first: number;
  lines: string[];
}

/** What a log tail asks the REST API for: `limit` lines from `from`, or the last `limit` lines when `from` is absent. */
export interface LogLinesRequest {
  from?: number;
  limit: number;
}

export interface LogTailOptions<M extends Message<string, unknown>> {
  /** Fetches lines over REST (see `LogLinesRequest`); may return fewer than asked, never lines past the end. Required. */
  load: (request: LogLinesRequest, signal: AbortSignal) => Promise<LogLines>;
  /** Lines kept in the window; the oldest are dropped past it (each `loadEarlier` raises it by the lines it brought). Default: 10000. */
  maxLines?: number;
  /** Lines loaded at start, after a resync, and by `loadEarlier()` without an argument. Default: 1000. */
  tailLines?: number;
  /** Reads the lines out of a message; messages it returns `undefined` for are ignored. Default: the body when it is a `LogLines`. */
  lines?: (message: M) => LogLines | undefined;
  /** First delay in ms before a failed REST request is retried; doubles with jitter. Default: 1000. */
  retryDelay?: number;
  /** Longest delay in ms between REST retries. Default: 30000. */
  retryDelayMax?: number;
}

/** `new LogTail(…)`: the options plus a source of append messages. */
export interface LogTailInit<M extends Message<string, unknown>> extends LogTailOptions<M> {
  /** Where the append messages come from; opened at once, closed by `close()`. Required. */
  source: MessageSource<M>;
}

/** The lines in hand: `lines[i]` is line `first + i`. */
export interface LogWindow {
  readonly first: number;
  readonly lines: readonly string[];
}

/**
 * What changed in a log tail, for views that patch the DOM instead of
 * re-rendering: 'append' adds `lines` at the end, 'prepend' before the start,
 * 'reset' replaces everything (the window jumped past lines it never had);
 * `dropped` lines were removed from the start first.
 */
export interface LogTailChange {
  kind: 'append' | 'prepend' | 'reset';
  /** Number of `lines[0]`. */
  first: number;
  lines: readonly string[];
  dropped: number;
}

export interface LogTailEvents {
  /** Lines were added (or the window reset); emitted synchronously, once per change. */
  change(change: LogTailChange): void;
  /** `status` changed. */
  status(status: LiveStatus, previous: LiveStatus): void;
  /** A REST request failed (`load_failed`, retried with backoff) or the source reported a failure. */
  error(error: TopicgateError): void;
  /**
   * Lines will be fetched over REST after the first load, and why: the last
   * lines again after a resync of the source, or the lines missing between
   * two appends (`line_gap`).
   */
  reload(reason: SubscriptionResyncReason | LogFetchReason): void;
}

// ---------------------------------------------------------------------------
// Socket seam

/** What the client needs from a socket.io-client `Socket`; an in-process fake implements the same. */
export interface SocketLike {
  readonly connected: boolean;
  /** Whether socket.io will reconnect on its own (false after a refused handshake or a server-side disconnect). */
  readonly active: boolean;
  connect(): unknown;
  disconnect(): unknown;
  on(event: 'connect', listener: () => void): unknown;
  on(event: 'disconnect', listener: (reason: string) => void): unknown;
  on(event: 'connect_error', listener: (error: Error & { data?: unknown }) => void): unknown;
  on<E extends keyof ServerToClientEvents>(event: E, listener: ServerToClientEvents[E]): unknown;
  emit<E extends keyof ClientToServerEvents>(event: E, ...args: Parameters<ClientToServerEvents[E]>): unknown;
}

/** socket.io-client's `io(url, options)`, or a fake with the same shape. */
export type SocketFactory = (url: string, options: Partial<ManagerOptions & SocketOptions>) => SocketLike;
