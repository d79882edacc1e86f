/**
 * The hooks, typed by the application's topic map the way the SDK's client
 * is: `createTopicgateHooks<Topics>()` returns them checked against `Topics`
 * (a pattern that matches no topic, a `load` of the wrong type, a missing
 * `apply` for bodies that are not items: compile errors). The plain exports
 * are the same functions typed for any topic (`AnyTopics`).
 */
import type {
  AnyTopics,
  CheckedPattern,
  Client,
  LiveCollectionOptions,
  LiveResourceOptions,
  LogTailOptions,
  TopicBody,
  TopicMessage,
} from '@topicgate/client';
import { useClient } from './provider.js';
import type { LiveCollectionState, LiveResourceState, LogTailState, SubscriptionHookState } from './types.js';
import { useLiveCollection as liveCollection } from './use-live-collection.js';
import { useLiveResource as liveResource } from './use-live-resource.js';
import { useLogTail as logTail } from './use-log-tail.js';
import { useSubscription as subscription } from './use-subscription.js';

/** One pattern, or several (one subscription each; the view reloads when any of them resyncs). */
export type Patterns<T, P extends string> = CheckedPattern<T, P> | readonly CheckedPattern<T, P>[];

/** The option the hooks add to the SDK's. */
export interface PatternOption<T, P extends string> {
  /** Pattern(s) to subscribe to; a new pattern closes the view and opens another. Required. */
  pattern: Patterns<T, P>;
}

/** As in the SDK: without `apply` every body the pattern can receive must be an item. */
export type ApplyRequired<Item, M extends { body: unknown }> = [M['body']] extends [Item]
  ? unknown
  : { apply: (prev: Item | undefined, message: M) => Item | null | undefined };

/**
 * Every hook that subscribes opens its view in an effect and closes it in the
 * cleanup: one gateway subscription per mounted hook, none on the server.
 * Options that are functions (`load`, `apply`, `sort`, handlers, …) may be
 * new every render: the view calls the latest. Any other option — the
 * pattern above all — makes a new view when its value changes.
 */
export interface TopicgateHooks<T extends object> {
  /**
   * A collection kept equal to the REST API's (`client.liveCollection`).
   *
   * @example
   * const { items, status, reloadReason, error } = useLiveCollection({
   *   pattern: 'builds.*.*',
   *   load: async (signal) => (await fetch('/api/builds', { signal })).json(),
   *   apply: (_prev, m) => (m.key.endsWith('.deleted') ? null : m.body),
   * });
   */
  useLiveCollection<P extends string, Item = TopicBody<T, P>>(
    options: PatternOption<T, P> &
      LiveCollectionOptions<Item, TopicMessage<T, P>> &
      ApplyRequired<Item, TopicMessage<T, P>>,
  ): LiveCollectionState<Item>;

  /**
   * One resource kept equal to the REST API's (`client.liveResource`).
   *
   * @example
   * const { value } = useLiveResource({
   *   pattern: `builds.${id}.*`,
   *   load: async (signal) => {
   *     const response = await fetch(`/api/builds/${id}`, { signal });
   *     return response.status === 404 ? null : response.json();
   *   },
   * });
   */
  useLiveResource<P extends string, Item = TopicBody<T, P>>(
    options: PatternOption<T, P> &
      LiveResourceOptions<Item, TopicMessage<T, P>> &
      ApplyRequired<Item, TopicMessage<T, P>>,
  ): LiveResourceState<Item>;

  /**
   * The end of a log, in order, each line once (`client.logTail`).
   *
   * @example
   * const { lines, first } = useLogTail({ pattern: `logs.${id}.append`, load: fetchLines });
   */
  useLogTail<P extends string>(options: PatternOption<T, P> & LogTailOptions<TopicMessage<T, P>>): LogTailState;

  /**
   * The raw messages of a pattern (`client.subscribe`); `handler` sees every
   * one, the state holds the latest.
   *
   * @example
   * const { last } = useSubscription('builds.*.finished', (m) => notify(m.body));
   */
  useSubscription<P extends string>(
    pattern: CheckedPattern<T, P>,
    handler?: (message: TopicMessage<T, P>) => void,
  ): SubscriptionHookState<TopicMessage<T, P>>;

  /** The provider's client, typed; null when it has none. */
  useClient(): Client<T> | null;
}

const hooks = {
  useLiveCollection: liveCollection,
  useLiveResource: liveResource,
  useLogTail: logTail,
  useSubscription: subscription,
  useClient,
} as unknown as TopicgateHooks<AnyTopics>;

/**
 * The hooks, typed by your topic map. Nothing happens at run time: these are
 * the very functions exported below.
 *
 * @example
 * export const { useLiveCollection, useLiveResource, useLogTail, useSubscription } = createTopicgateHooks<Topics>();
 */
export function createTopicgateHooks<T extends object>(): TopicgateHooks<T> {
  return hooks as unknown as TopicgateHooks<T>;
}

// Typed by name, so that declarations refer to `TopicgateHooks` instead of spelling its types out.
export const useLiveCollection: TopicgateHooks<AnyTopics>['useLiveCollection'] = hooks.useLiveCollection;
export const useLiveResource: TopicgateHooks<AnyTopics>['useLiveResource'] = hooks.useLiveResource;
export const useLogTail: TopicgateHooks<AnyTopics>['useLogTail'] = hooks.useLogTail;
export const useSubscription: TopicgateHooks<AnyTopics>['useSubscription'] = hooks.useSubscription;
