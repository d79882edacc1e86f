/**
 * An external store (for `useSyncExternalStore`) around one SDK object — a
 * live collection, a live resource, a log tail or a subscription — whose
 * life follows a component's effects.
 *
 * React may run an effect, clean it up and run it again at once (StrictMode
 * does, so may `<Activity>`). Opening the SDK object on a microtask after
 * `start()` lets such a start → stop → start settle first: the gateway sees
 * one subscribe, not a subscribe, an unsubscribe and another subscribe.
 */

/** Opens the SDK object; `set` updates the store's state. Returns what closes it. */
export type Opener<S> = (set: (update: (prev: S) => S) => void) => () => void;

export class ViewStore<S> {
  readonly #initial: S;
  readonly #open: Opener<S>;
  #state: S;
  readonly #listeners = new Set<() => void>();
  /** Whether the component wants it open (between its effect and the effect's cleanup). */
  #wanted = false;
  #opening = false;
  /** Closes what is open; undefined while nothing is. */
  #close: (() => void) | undefined;

  constructor(initial: S, open: Opener<S>) {
    this.#initial = initial;
    this.#state = initial;
    this.#open = open;
  }

  readonly subscribe = (listener: () => void): (() => void) => {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  };

  readonly getSnapshot = (): S => this.#state;

  /** What the server rendered, and what hydration starts from: nothing is open there. */
  readonly getServerSnapshot = (): S => this.#initial;

  /** From the component's effect. */
  start(): void {
    this.#wanted = true;
    if (this.#close !== undefined || this.#opening) return;
    this.#opening = true;
    queueMicrotask(() => {
      this.#opening = false;
      if (!this.#wanted || this.#close !== undefined) return;
      // Opened afresh: nothing of an earlier opening carries over (its items may be stale by now).
      this.#set(this.#initial);
      let open = true;
      const close = this.#open((update) => {
        if (open) this.#set(update(this.#state));
      });
      this.#close = () => {
        // Detached first: the object's own 'closed' status is no news to a component that is going away.
        open = false;
        close();
      };
    });
  }

  /** From the effect's cleanup. */
  stop(): void {
    this.#wanted = false;
    const close = this.#close;
    this.#close = undefined;
    close?.();
  }

  #set(next: S): void {
    if (Object.is(next, this.#state)) return;
    this.#state = next;
    for (const listener of [...this.#listeners]) listener();
  }
}

/** `prev` when every field of `next` is the same, so that an unchanged view does not re-render. */
export function merge<S extends object>(prev: S, next: Partial<S>): S {
  for (const key of Object.keys(next) as (keyof S)[]) {
    if (!Object.is(prev[key], next[key])) return { ...prev, ...next };
  }
  return prev;
}
