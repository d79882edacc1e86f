import type { LogFetchReason, LogTailOptions, Message, SubscriptionResyncReason } from '@topicgate/client';
import { followView, latestFunctions, openView, VIEW_START } from './live-view.js';
import { useClient } from './provider.js';
import type { LogTailState } from './types.js';
import { useLatest, useView, viewKey } from './use-view.js';

/** Untyped: `useLogTail` in hooks.ts gives it the topic map's types. */
export type LogTailHookOptions = LogTailOptions<Message<string, unknown>> & {
  pattern: string | readonly string[];
};

const START: LogTailState = {
  ...VIEW_START,
  first: 0,
  lines: [],
  loaded: false,
  hasEarlier: false,
  loadEarlier: async () => 0,
};

export function useLogTail(options: LogTailHookOptions): LogTailState {
  const client = useClient();
  const latest = useLatest(options);
  const state = useView<LogTailState>(client, viewKey(options), START, (client, set) =>
    openView(set, () => {
      const view = client.logTail(latestFunctions(latest, latest.current) as never);
      set((prev) => ({ ...prev, loadEarlier: (count) => view.loadEarlier(count) }));
      return followView<LogTailState, SubscriptionResyncReason | LogFetchReason>(view, set, () => {
        const { first, lines } = view.getSnapshot();
        return { first, lines, loaded: view.loaded, hasEarlier: view.hasEarlier };
      });
    }),
  );
  return state;
}
