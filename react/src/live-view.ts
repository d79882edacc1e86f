/**
 * What the three view hooks share: calling the latest render's option
 * functions, and turning a view's events into the hook's state.
 */
import { ErrorCode, TopicgateError, type LiveStatus } from '@topicgate/client';
import type { RefObject } from 'react';
import type { ViewState } from './types.js';
import { merge } from './view-store.js';

/**
 * `given` with every function replaced by one that calls the same option of
 * the latest committed render (or `given`'s, once that option is gone: a
 * view about to be replaced may still call it).
 */
export function latestFunctions<O extends object>(latest: RefObject<O>, given: O): O {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(given)) {
    if (typeof value !== 'function') {
      out[name] = value;
      continue;
    }
    out[name] = (...args: unknown[]) => {
      const current = (latest.current as Record<string, unknown>)[name];
      return (typeof current === 'function' ? current : value)(...args);
    };
  }
  return out as O;
}

/** The events a live collection, live resource and log tail have in common. */
export interface WatchableView<R> {
  readonly status: LiveStatus;
  on(event: 'status', listener: (status: LiveStatus) => void): () => void;
  on(event: 'error', listener: (error: TopicgateError) => void): () => void;
  on(event: 'reload', listener: (reason: R) => void): () => void;
  watch(listener: () => void): () => void;
  close(): void;
}

/**
 * Keeps the hook's state equal to `view`: `read` takes its data (read whole
 * at every event, so that status and data never disagree), and status,
 * reloads and errors are tracked here. Returns what closes the view.
 */
export function followView<S extends ViewState<R>, R>(
  view: WatchableView<R>,
  set: (update: (prev: S) => S) => void,
  read: () => Partial<S>,
): () => void {
  const sync = (extra: Partial<ViewState<R>> = {}) =>
    set((prev) => merge(prev, { ...read(), status: view.status, ...extra } as Partial<S>));
  const stops = [
    view.watch(() => sync()),
    // A view that is live again has recovered from whatever failed.
    view.on('status', (status) => sync(status === 'live' ? { error: undefined } : {})),
    view.on('error', (error) => sync({ error })),
    view.on('reload', (reason) => set((prev) => ({ ...prev, reloads: prev.reloads + 1, reloadReason: reason }))),
  ];
  sync();
  return () => {
    for (const stop of stops) stop();
    view.close();
  };
}

/**
 * Opens a view, or reports why it could not be: `client.liveCollection(…)`
 * and the others throw at once on an invalid pattern, which a component
 * renders as an error rather than crashing on a microtask.
 */
export function openView<S extends ViewState<unknown>>(
  set: (update: (prev: S) => S) => void,
  open: () => () => void,
): () => void {
  try {
    return open();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    set((prev) => ({ ...prev, status: 'closed', error: new TopicgateError(ErrorCode.InvalidPattern, message, { cause: error }) }));
    return () => {};
  }
}

/** The state every view starts in (and renders on the server). */
export const VIEW_START = { status: 'subscribing', reloads: 0, reloadReason: undefined, error: undefined } as const satisfies ViewState<never>;
