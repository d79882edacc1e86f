/**
 * Codes the SDK adds to the protocol's own (`ErrorCode`, `ResyncReason`,
 * `UnsubscribedReason` in `@topicgate/shared`). Only what the browser side can
 * observe and the gateway cannot say lives here.
 */
import type { ErrorCode, ResyncReason } from '@topicgate/shared';

/** Error codes raised by the SDK itself, next to the gateway's `ErrorCode`s. */
export const ClientErrorCode = {
  /** The gateway could not be reached (network, DNS, TLS, gateway down); socket.io keeps retrying. */
  Transport: 'transport',
  /** `getToken()` rejected or resolved to something other than a non-empty string. */
  TokenUnavailable: 'token_unavailable',
  /** A REST `load` of a live collection, live resource or log tail failed; it is retried with backoff. */
  LoadFailed: 'load_failed',
  /** A live collection's snapshot held items without an id (see its `id` option); they are left out. */
  ItemWithoutId: 'item_without_id',
} as const;
export type ClientErrorCode = (typeof ClientErrorCode)[keyof typeof ClientErrorCode];

/** Every code a `TopicgateError` can carry. */
export type TopicgateErrorCode = ErrorCode | ClientErrorCode;

/** Reasons for a resync that the SDK detects on its own, next to the gateway's `ResyncReason`s. */
export const ClientResyncReason = {
  /** The socket reconnected and the subscription was made again: anything published meanwhile is lost. */
  Resubscribed: 'resubscribed',
  /** A delivery's `seq` skipped numbers: the gateway relayed messages this client never saw. */
  SeqGap: 'seq_gap',
  /** The gateway ended the subscription (`queue_deleted`, `shutdown`) and the SDK made it again. */
  Restarted: 'restarted',
} as const;
export type ClientResyncReason = (typeof ClientResyncReason)[keyof typeof ClientResyncReason];

/** Why a subscription must reload its state: the gateway's reasons and the SDK's. */
export type SubscriptionResyncReason = ResyncReason | ClientResyncReason;

/**
 * Why a live collection or resource loads its snapshot again, beyond the
 * source's resyncs. The SDK reloads on its own; these let a UI say why.
 */
export const LiveReloadReason = {
  /** A message skipped versions: the ones in between were lost or are still on their way. */
  VersionGap: 'version_gap',
  /** A message carried an older version than the item in hand: what is shown may be stale. */
  VersionRegression: 'version_regression',
  /** `isValidTransition` refused a message: messages arrived out of order. */
  InvalidTransition: 'invalid_transition',
  /** An item the last snapshot no longer had came back: only a snapshot can say whether it exists. */
  Reappeared: 'reappeared',
  /** More than `maxHeld` messages arrived during a load: they were dropped for a later snapshot. */
  HeldOverflow: 'held_overflow',
  /** The application called `reload()`. */
  Requested: 'requested',
} as const;
export type LiveReloadReason = (typeof LiveReloadReason)[keyof typeof LiveReloadReason];

/** Why a log tail fetches lines over REST after its first load. */
export const LogFetchReason = {
  /** An append started past the last line in hand: the lines in between are fetched. */
  LineGap: 'line_gap',
} as const;
export type LogFetchReason = (typeof LogFetchReason)[keyof typeof LogFetchReason];

/** Why a subscription ended for good (it will not be made again). */
export const SubscriptionEndReason = {
  /** The application called `unsubscribe()`. */
  Unsubscribe: 'unsubscribe',
  /** The application called `client.close()`. */
  Closed: 'closed',
  /** The gateway refused the subscription (`invalid_pattern`, `forbidden`, `bad_request`, `refused`); see the error. */
  Rejected: 'rejected',
  /** After a token refresh the gateway ended it: the new token does not allow the pattern. */
  Forbidden: 'forbidden',
} as const;
export type SubscriptionEndReason = (typeof SubscriptionEndReason)[keyof typeof SubscriptionEndReason];
