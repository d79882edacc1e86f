import type { LiveResourceOptions, Message } from '@topicgate/client';
import { followView, latestFunctions, openView, VIEW_START } from './live-view.js';
import { useClient } from './provider.js';
import type { LiveReload, LiveResourceState } from './types.js';
import { useLatest, useView, viewKey } from './use-view.js';

/** Untyped: `useLiveResource` in hooks.ts gives it the topic map's types. */
export type LiveResourceHookOptions = LiveResourceOptions<unknown, Message<string, unknown>> & {
  pattern: string | readonly string[];
};

const START: LiveResourceState<never> = { ...VIEW_START, value: undefined, reload: () => {} };

export function useLiveResource(options: LiveResourceHookOptions): LiveResourceState<unknown> {
  const client = useClient();
  const latest = useLatest(options);
  const state = useView<LiveResourceState<unknown>>(client, viewKey(options), START, (client, set) =>
    openView(set, () => {
      const view = client.liveResource(latestFunctions(latest, latest.current) as never);
      set((prev) => ({ ...prev, reload: () => view.reload() }));
      return followView<LiveResourceState<unknown>, LiveReload>(view, set, () => ({ value: view.getSnapshot() }));
    }),
  );
  return state;
}
