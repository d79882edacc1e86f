/**
 * Everything the hooks return, in one file: what a component renders.
 * The options are the SDK's own (`LiveCollectionOptions`, …, in
 * `@topicgate/client`), plus `pattern`.
 */
import type {
  ConnectionState,
  LiveReloadReason,
  LiveStatus,
  LogFetchReason,
  SubscriptionResyncReason,
  SubscriptionState,
  TopicgateError,
} from '@topicgate/client';

/** What every live view reports besides its data. */
export interface ViewState<R> {
  /** 'subscribing' until the gateway acknowledged, 'loading' while REST is read (or retried), 'live' after, 'closed' once unmounted. */
  readonly status: LiveStatus;
  /** Times the view loaded again after its first load (a resync, a version gap, …); 0 while nothing went wrong. */
  readonly reloads: number;
  /** Why it loaded again the last time; undefined until it has. */
  readonly reloadReason: R | undefined;
  /** The last failure (`load_failed`, retried with backoff; `forbidden`, …); cleared once the view is live again. */
  readonly error: TopicgateError | undefined;
}

/** Why a live collection or resource reloaded. */
export type LiveReload = SubscriptionResyncReason | LiveReloadReason;

/** `useLiveCollection`'s result. */
export interface LiveCollectionState<Item> extends ViewState<LiveReload> {
  /** The items, ordered by `sort`; the same array until something changes. Empty until loaded. */
  readonly items: readonly Item[];
  /** Whether a snapshot has been loaded, i.e. an empty `items` means an empty collection. */
  readonly loaded: boolean;
  /** Loads the snapshot again (coalesced with a load under way). Stable across renders. */
  readonly reload: () => void;
}

/** `useLiveResource`'s result. */
export interface LiveResourceState<Item> extends ViewState<LiveReload> {
  /** The resource; `undefined` until loaded, `null` when it does not exist. */
  readonly value: Item | null | undefined;
  /** Loads the resource again. Stable across renders. */
  readonly reload: () => void;
}

/** `useLogTail`'s result. */
export interface LogTailState extends ViewState<SubscriptionResyncReason | LogFetchReason> {
  /** Number of `lines[0]` (0-based). */
  readonly first: number;
  /** The lines in hand, in order, each once; the same array until something changes. */
  readonly lines: readonly string[];
  /** Whether the first lines have been loaded. */
  readonly loaded: boolean;
  /** Whether there are lines before `first` that `loadEarlier` can fetch. */
  readonly hasEarlier: boolean;
  /** Fetches up to `count` lines before `first` (default: `tailLines`); resolves to how many were added. Stable across renders. */
  readonly loadEarlier: (count?: number) => Promise<number>;
}

/** `useSubscription`'s result: the raw stream, for what is not a collection, a resource or a log. */
export interface SubscriptionHookState<M> {
  /** 'subscribing' until the gateway acknowledged (and while reconnecting), 'unsubscribed' once refused for good or unmounted. */
  readonly status: SubscriptionState;
  /** The latest message; undefined until one arrives. */
  readonly last: M | undefined;
  /** Messages received since the hook subscribed (to this pattern). */
  readonly received: number;
  /** Why messages may have been lost the last time (`resubscribed`, `seq_gap`, …); undefined while none were. */
  readonly resyncReason: SubscriptionResyncReason | undefined;
  /** The last refusal (`forbidden`, `limit_exceeded` retried, …); cleared when the gateway acknowledges. */
  readonly error: TopicgateError | undefined;
}

/** `useConnectionState`'s result. */
export interface ConnectionHookState {
  /** 'connecting' (also while reconnecting), 'connected', or 'disconnected' (no attempt under way, or no client). */
  readonly state: ConnectionState;
  /** The client's last error (`unauthorized`, `revoked`, `transport`, `token_unavailable`, …); cleared on the next connect. */
  readonly error: TopicgateError | undefined;
}
