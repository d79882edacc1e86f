/**
 * One resource kept equal to the REST API's: a live collection of at most one
 * item, every message on its pattern(s) being about that item.
 */
import { Emitter } from './emitter.js';
import { LiveCollection } from './live-collection.js';
import type { LiveEvents, LiveResourceInit, LiveStatus, Message } from './types.js';

/** Every message and the loaded item share this id. */
const ONLY = 0;

/**
 * @example
 * const build = new LiveResource({
 *   source: client.source('builds.42.*'),
 *   load: async (signal) => (await fetch('/api/builds/42', { signal })).json(),
 * });
 * build.on('change', (value) => render(value)); // undefined until loaded, null when absent
 */
export class LiveResource<Item, M extends Message<string, unknown> = Message> extends Emitter<
  LiveEvents<Item | null | undefined>
> {
  readonly #inner: LiveCollection<Item, M>;

  constructor(init: LiveResourceInit<Item, M>) {
    super();
    const load = init.load;
    this.#inner = new LiveCollection<Item, M>({
      ...init,
      id: () => ONLY,
      load: async (signal) => {
        const value = await load(signal);
        return value === null || value === undefined ? [] : [value];
      },
    });
    this.#inner.on('change', () => this.emit('change', this.value));
    this.#inner.on('status', (status, previous) => this.emit('status', status, previous));
    this.#inner.on('error', (error) => this.emit('error', error));
    this.#inner.on('reload', (reason) => this.emit('reload', reason));
  }

  /** The resource; `undefined` until the first load, `null` when it does not exist. */
  get value(): Item | null | undefined {
    return this.getSnapshot();
  }

  get status(): LiveStatus {
    return this.#inner.status;
  }

  /** The value, stable between changes (for React's `useSyncExternalStore`). */
  readonly getSnapshot = (): Item | null | undefined => {
    if (!this.#inner.loaded) return undefined;
    return this.#inner.get(ONLY) ?? null;
  };

  /** Calls `listener` after each change; returns a function that stops. Shaped for `useSyncExternalStore`. */
  readonly watch = (listener: () => void): (() => void) => this.on('change', () => listener());

  /** Loads the resource again (coalesced with any load under way). */
  reload(): void {
    this.#inner.reload();
  }

  close(): void {
    this.#inner.close();
  }
}
