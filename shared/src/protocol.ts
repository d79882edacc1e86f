/**
 * topicgate wire protocol v1 (socket.io, default namespace).
 *
 * This file is the contract between the gateway, the SDK and anyone writing
 * their own client: event names, payloads and error codes are defined here
 * once and imported everywhere else. Specification: docs/protocol.md.
 */
import type { JsonObject } from './json.js';

export const PROTOCOL_VERSION = 1;

/** Events a client emits; each takes an acknowledgement callback. */
export const ClientEvent = {
  Subscribe: 'subscribe',
  Unsubscribe: 'unsubscribe',
  Refresh: 'refresh',
  /** Cumulative receipts for resumable subscriptions (docs/protocol.md §15.3). */
  Received: 'received',
} as const;

/** Events the gateway emits. */
export const ServerEvent = {
  Messages: 'messages',
  Resync: 'resync',
  Unsubscribed: 'unsubscribed',
  /** An operator revoked the token's subject: the gateway disconnects the socket right after (docs/protocol.md §6.5). */
  Revoked: 'revoked',
} as const;

/** Codes in `{ ok: false, error: { code } }` acknowledgements and `connect_error.data`. */
export const ErrorCode = {
  /** The pattern is a string but not a valid routing-key pattern; fix it, retrying will not help. */
  InvalidPattern: 'invalid_pattern',
  /** The token does not allow every key the pattern can match. */
  Forbidden: 'forbidden',
  /** Too many subscriptions on this socket, or subscribing too fast. */
  LimitExceeded: 'limit_exceeded',
  /** The broker is unreachable right now; retry later. */
  Unavailable: 'unavailable',
  /**
   * The broker refused the subscription and retrying will not help (e.g. the
   * gateway's broker user may not declare the queue, or a queue exists with
   * other arguments); an operator must act.
   */
  Refused: 'refused',
  /** The event payload is malformed (not an object, a required field missing or not a string, e.g. `subscribe` without a string `pattern`). */
  BadRequest: 'bad_request',
  /** `unsubscribe` named an id this socket does not hold. */
  UnknownSubscription: 'unknown_subscription',
  /** Handshake or `refresh`: the token is missing, malformed, expired or not trusted. */
  Unauthorized: 'unauthorized',
  /**
   * Not in acknowledgements: the code of the `revoked` notice. An operator
   * revoked the token's subject on every gateway; tokens issued before that
   * are refused (`unauthorized`) from then on.
   */
  Revoked: 'revoked',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Why a live subscription may have lost messages; the client must reload from REST. */
export const ResyncReason = {
  /** The gateway's broker connection was re-established. */
  Reconnected: 'reconnected',
  /** This client could not keep up and messages were dropped for it. */
  Overflow: 'overflow',
  /**
   * The gateway's AMQP channel carrying this subscription failed; messages in
   * flight on it were lost. Also: a resume could not tell which messages in
   * flight at the cut the client already had (docs/protocol.md §15.4).
   */
  Interrupted: 'interrupted',
  /** Resume: the subscription's queue is gone (the resume window passed, or it was deleted). */
  Expired: 'expired',
  /** Resume: the broker lost what the queue held while the client was away (a node restart drops non-persistent messages). */
  Lost: 'lost',
} as const;
export type ResyncReason = (typeof ResyncReason)[keyof typeof ResyncReason];

/** Why the gateway ended a subscription. */
export const UnsubscribedReason = {
  /** After a token refresh, the new token no longer allows the pattern. */
  Forbidden: 'forbidden',
  /** The subscription's queue was deleted on the broker (by an operator, or a broker error). */
  QueueDeleted: 'queue_deleted',
  /** The gateway is shutting down. */
  Shutdown: 'shutdown',
} as const;
export type UnsubscribedReason = (typeof UnsubscribedReason)[keyof typeof UnsubscribedReason];

export interface ProtocolError {
  code: ErrorCode;
  message: string;
}

export type Ack<T extends object = object> = ({ ok: true } & T) | { ok: false; error: ProtocolError };

export interface SubscribeRequest {
  pattern: string;
  /**
   * Ask for a subscription that survives an unexpected disconnect for the
   * gateway's resume window (docs/protocol.md §15). Ignored by a gateway
   * without one: its ack then carries no `resume`.
   */
  resumable?: boolean;
  /** Take up a subscription held from an earlier connection instead of starting afresh. */
  resume?: ResumeRequest;
}

/** What a client presents to take up a resumable subscription (docs/protocol.md §15.2). */
export interface ResumeRequest {
  /** The latest `claim` the gateway gave for the subscription (subscribe ack, or a `resync`). */
  claim: string;
  /** The last `seq` the client received. */
  seq: number;
  /** The last `seq` of a `received` the gateway acknowledged with `{ ok: true }` (0: none). */
  settled: number;
  /** The `seq` of a `received` still unacknowledged when the connection was cut, if any. */
  pending?: number;
  /**
   * `deliveryFingerprint` of each delivery from `settled` (or 1) up to `seq`,
   * oldest first (`seq − max(settled − 1, 0)` of them): the delivery a
   * receipt names stays unsettled at the broker (docs/protocol.md §15.4).
   */
  fingerprints: number[];
}

/**
 * The most fingerprints a resume may present (more is `bad_request`): above
 * any broker window a gateway allows (TOPICGATE_RESUME_PREFETCH), so a
 * client past it owes more than can be aligned and subscribes afresh.
 */
export const MAX_RESUME_FINGERPRINTS = 4096;

/** Present in a subscribe ack when the subscription is resumable. */
export interface ResumeGrant {
  /** Opaque; presented in `resume.claim` on a later connection. */
  claim: string;
  /** Seconds the subscription outlives an unexpected disconnect. */
  window: number;
}

export type SubscribeAck = Ack<{
  id: string;
  resume?: ResumeGrant;
  /** Only when the request carried `resume`: true when the subscription continues exactly where the client left it. */
  resumed?: boolean;
  /**
   * With `resumed: true`: the client's `settled` from now on (a receipt in
   * flight at the cut has been resolved: applied or not).
   */
  settled?: number;
  /** Only with `resumed: false`: why the client must reload (a fresh subscription was made in its place). */
  reason?: ResyncReason;
}>;

/** `received`: for each resumable subscription, the last `seq` the client has (cumulative). */
export interface ReceivedRequest {
  seqs: Record<string, number>;
}
/** `{ ok: true }` once the broker has taken every receipt in the request. */
export type ReceivedAck = Ack;

export interface UnsubscribeRequest {
  id: string;
}
export type UnsubscribeAck = Ack;

export interface RefreshRequest {
  token: string;
}
export type RefreshAck = Ack;

/** One message relayed to one subscription. */
export interface Delivery<Body = JsonObject> {
  /** The subscription id from the `subscribe` ack. */
  id: string;
  /** The routing key the message was published with. */
  key: string;
  /** The JSON object as published. */
  body: Body;
  /** Per-subscription counter: 1 for the first delivery, +1 for each after. */
  seq: number;
}

export interface ResyncNotice {
  id: string;
  reason: ResyncReason;
  /** A resumable subscription's new claim: its queue was replaced, and the old claim is void. */
  resume?: ResumeGrant;
}

export interface UnsubscribedNotice {
  id: string;
  reason: UnsubscribedReason;
}

/** The `revoked` event: sent once, right before the gateway disconnects the socket. */
export interface RevokedNotice {
  code: typeof ErrorCode.Revoked;
  /** English, for logs and display; never match on it. */
  message: string;
}

/**
 * `connect_error` `data` when the handshake is refused: `unauthorized` (the
 * token), or `limit_exceeded` (too many connections for this token's subject).
 */
export interface ConnectErrorData {
  code: typeof ErrorCode.Unauthorized | typeof ErrorCode.LimitExceeded;
  message: string;
}

/** Handshake `auth` payload: `io(url, { auth: { token } })`. */
export interface HandshakeAuth {
  token?: string;
}

export interface ClientToServerEvents {
  subscribe(request: SubscribeRequest, ack: (result: SubscribeAck) => void): void;
  unsubscribe(request: UnsubscribeRequest, ack: (result: UnsubscribeAck) => void): void;
  refresh(request: RefreshRequest, ack: (result: RefreshAck) => void): void;
  received(request: ReceivedRequest, ack: (result: ReceivedAck) => void): void;
}

export interface ServerToClientEvents {
  /** One or more deliveries, oldest first. */
  messages(batch: Delivery[]): void;
  resync(notice: ResyncNotice): void;
  unsubscribed(notice: UnsubscribedNotice): void;
  revoked(notice: RevokedNotice): void;
}

/**
 * A delivery's fingerprint for resume (docs/protocol.md §15.4): a 53-bit hash
 * of its key and its body as `JSON.stringify` writes it, so the gateway and
 * any client compute the same number from the same delivery.
 */
export function deliveryFingerprint(key: string, body: object): number {
  return hash53(`${key}\u0000${JSON.stringify(body)}`);
}

/** cyrb53 (public domain, bryc): fast, well mixed, and exact in a JS number. */
function hash53(text: string): number {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}
