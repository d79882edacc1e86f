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
 * The collection's events passed on as they are; `change` carries the value
 * instead. A record over every event name, so that a new event on
 * `LiveEvents` does not compile until it is placed here.
 */
const PASSED_ON = { status: true, error: true, reload: true, change: false } as const satisfies Record<
  keyof LiveEvents<unknown>,
  boolean
>;
type PassedOn = { [E in keyof typeof PASSED_ON]: (typeof PASSED_ON)[E] extends true ? E : never }[keyof typeof PASSED_ON];
const PASSED_ON_NAMES = (Object.keys(PASSED_ON) as (keyof typeof PASSED_ON)[]).filter(
  (event): event is PassedOn => PASSED_ON[event],
);

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
    for (const event of PASSED_ON_NAMES) this.#passOn(event);
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

  #passOn<E extends PassedOn>(event: E): void {
    // These events' arguments do not depend on the value type, which is all that differs between the two maps.
    const listener = (...args: Parameters<LiveEvents<unknown>[E]>) => this.emit(event, ...args);
    this.#inner.on(event, listener as LiveEvents<readonly Item[]>[E]);
  }
}
