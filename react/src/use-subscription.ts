import { ErrorCode, TopicgateError, type Message } from '@topicgate/client';
import { useClient } from './provider.js';
import type { SubscriptionHookState } from './types.js';
import { useLatest, useView } from './use-view.js';
import { merge } from './view-store.js';

const START: SubscriptionHookState<never> = {
  status: 'subscribing',
  last: undefined,
  received: 0,
  resyncReason: undefined,
  error: undefined,
};

/** Untyped: `useSubscription` in hooks.ts gives it the topic map's types. */
export function useSubscription(
  pattern: string,
  handler?: (message: Message<string, unknown>) => void,
): SubscriptionHookState<Message<string, unknown>> {
  const client = useClient();
  const latestHandler = useLatest(handler);
  const state = useView<SubscriptionHookState<Message<string, unknown>>>(client, pattern, START, (client, set) => {
    let sub;
    try {
      sub = client.subscribe(pattern);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      set((prev) => ({ ...prev, status: 'unsubscribed', error: new TopicgateError(ErrorCode.InvalidPattern, message, { cause: error }) }));
      return () => {};
    }
    const stops = [
      sub.on('message', (message) => {
        // The handler first: it sees every message, the state only the latest of a batch once React renders.
        latestHandler.current?.(message);
        set((prev) => ({ ...prev, last: message, received: prev.received + 1 }));
      }),
      sub.on('state', (status) => set((prev) => merge(prev, { status }))),
      sub.on('subscribed', () => set((prev) => merge(prev, { error: undefined }))),
      sub.on('resync', ({ reason }) => set((prev) => merge(prev, { resyncReason: reason }))),
      sub.on('error', (error) => set((prev) => merge(prev, { error }))),
    ];
    set((prev) => merge(prev, { status: sub.state }));
    return () => {
      for (const stop of stops) stop();
      sub.unsubscribe();
    };
  });
  return state;
}
