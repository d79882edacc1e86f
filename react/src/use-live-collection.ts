import type { LiveCollectionOptions, Message } from '@topicgate/client';
import { followView, latestFunctions, openView, VIEW_START } from './live-view.js';
import { useClient } from './provider.js';
import type { LiveCollectionState, LiveReload } from './types.js';
import { useLatest, useView, viewKey } from './use-view.js';

/** Untyped: `useLiveCollection` in hooks.ts gives it the topic map's types. */
export type LiveCollectionHookOptions = LiveCollectionOptions<unknown, Message<string, unknown>> & {
  pattern: string | readonly string[];
};

const START: LiveCollectionState<never> = { ...VIEW_START, items: [], loaded: false, reload: () => {} };

export function useLiveCollection(options: LiveCollectionHookOptions): LiveCollectionState<unknown> {
  const client = useClient();
  const latest = useLatest(options);
  const state = useView<LiveCollectionState<unknown>>(client, viewKey(options), START, (client, set) =>
    openView(set, () => {
      const view = client.liveCollection(latestFunctions(latest, latest.current) as never);
      set((prev) => ({ ...prev, reload: () => view.reload() }));
      return followView<LiveCollectionState<unknown>, LiveReload>(view, set, () => ({ items: view.getSnapshot() as readonly unknown[], loaded: view.loaded }));
    }),
  );
  return state;
}
