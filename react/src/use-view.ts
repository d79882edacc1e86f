/**
 * The lifecycle every subscribing hook shares: one `ViewStore` per client and
 * key, opened by the component's effect and closed by its cleanup, read with
 * `useSyncExternalStore` so that concurrent renders never tear.
 */
import { useEffect, useInsertionEffect, useMemo, useRef, useSyncExternalStore, type RefObject } from 'react';
import type { Client } from '@topicgate/client';
import { ViewStore } from './view-store.js';

/**
 * Opens a view on `client` while the component is mounted and returns its
 * state; a new `key` (or client) closes it and opens another. Without a
 * client nothing is opened. `open` is read when opening, so it may be a new
 * function every render.
 */
export function useView<S>(
  client: Client<any> | null,
  key: string,
  initial: S,
  open: (client: Client<any>, set: (update: (prev: S) => S) => void) => () => void,
): S {
  const latestOpen = useLatest(open);
  // A new store for a new key: its state starts over, and the old one's effect closes the old view.
  const store = useMemo(
    () => new ViewStore<S>(initial, (set) => (client === null ? () => {} : latestOpen.current(client, set))),
    // `initial` is a constant per hook; only the client and the key decide what is open.
    [client, key],
  );
  useEffect(() => {
    store.start();
    return () => store.stop();
  }, [store]);
  return useSyncExternalStore(store.subscribe, store.getSnapshot, store.getServerSnapshot);
}

/**
 * A ref to this render's `value`, updated once the render commits (a render
 * React throws away must not leak its callbacks); the hooks call options'
 * functions through it, so inline `load`, `apply` or handlers never resubscribe.
 */
export function useLatest<V>(value: V): RefObject<V> {
  const ref = useRef(value);
  // Runs before every other effect, so the view's own effect already sees it.
  useInsertionEffect(() => {
    ref.current = value;
  });
  return ref;
}

/**
 * What decides whether a view must be made again: the patterns and every
 * option that is not a function (numbers are read once, when the view is
 * made), plus which functions are given at all. Functions themselves are
 * called through `useLatest` and may change freely.
 */
export function viewKey(options: object): string {
  const parts: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(options)) {
    parts[name] = typeof value === 'function' ? 'fn' : value;
  }
  return JSON.stringify(parts, Object.keys(parts).sort());
}
