/**
 * A typed event emitter: `on('state', …)` is checked against the event map.
 *
 * A listener that throws must not break the SDK's own bookkeeping (an ack
 * handler half done, a batch half delivered), so its error is rethrown on a
 * fresh microtask, where the page's error reporting still sees it.
 */

/** Constrains an event map: every property is a listener signature. */
export type EventMap<M> = { [E in keyof M]: (...args: any[]) => void };

export class Emitter<M extends EventMap<M>> {
  #listeners = new Map<keyof M, Set<M[keyof M]>>();

  /**
   * Adds a listener; returns a function that removes it.
   *
   * @example
   * const off = client.on('state', (state) => console.log(state));
   * off();
   */
  on<E extends keyof M>(event: E, listener: M[E]): () => void {
    let set = this.#listeners.get(event);
    if (set === undefined) this.#listeners.set(event, (set = new Set()));
    set.add(listener);
    return () => this.off(event, listener);
  }

  /** Adds a listener that is removed after its first call; returns a function that removes it earlier. */
  once<E extends keyof M>(event: E, listener: M[E]): () => void {
    const wrapper = ((...args: Parameters<M[E]>) => {
      off();
      listener(...args);
    }) as M[E];
    const off = this.on(event, wrapper);
    return off;
  }

  /** Removes one listener, or every listener of `event` when `listener` is omitted. */
  off<E extends keyof M>(event: E, listener?: M[E]): void {
    if (listener === undefined) this.#listeners.delete(event);
    else this.#listeners.get(event)?.delete(listener);
  }

  /** Removes every listener of every event. */
  removeAllListeners(): void {
    this.#listeners.clear();
  }

  protected emit<E extends keyof M>(event: E, ...args: Parameters<M[E]>): void {
    const set = this.#listeners.get(event);
    if (set === undefined || set.size === 0) return;
    // A copy, so that listeners added or removed by a listener take effect next time.
    for (const listener of [...set]) {
      try {
        listener(...args);
      } catch (error) {
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }
}
