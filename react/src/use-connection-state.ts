/**
 * The connection's state and last error, shared by every component that asks:
 * one store per client, listening to it from the first subscriber on for as
 * long as the client lives (its events are few).
 */
import { useSyncExternalStore } from 'react';
import type { Client } from '@topicgate/client';
import { useClient } from './provider.js';
import type { ConnectionHookState } from './types.js';

/** Without a client (on the server, before sign-in) nothing is connecting. */
const NONE: ConnectionHookState = { state: 'disconnected', error: undefined };

class ConnectionStore {
  readonly #client: Client<any>;
  #state: ConnectionHookState;
  readonly #listeners = new Set<() => void>();
  #listening = false;

  constructor(client: Client<any>) {
    this.#client = client;
    this.#state = { state: client.state, error: undefined };
  }

  readonly subscribe = (listener: () => void): (() => void) => {
    this.#listen();
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  };

  readonly getSnapshot = (): ConnectionHookState => this.#state;

  #listen(): void {
    if (this.#listening) return;
    this.#listening = true;
    this.#client.on('state', (state) => this.#set({ ...this.#state, state }));
    this.#client.on('connected', () => this.#set({ ...this.#state, error: undefined }));
    this.#client.on('error', (error) => this.#set({ ...this.#state, error }));
    // The state may have moved between the first render and this subscription.
    this.#set({ ...this.#state, state: this.#client.state });
  }

  #set(next: ConnectionHookState): void {
    if (next.state === this.#state.state && next.error === this.#state.error) return;
    this.#state = next;
    for (const listener of [...this.#listeners]) listener();
  }
}

const stores = new WeakMap<Client<any>, ConnectionStore>();
function storeOf(client: Client<any>): ConnectionStore {
  let store = stores.get(client);
  if (store === undefined) stores.set(client, (store = new ConnectionStore(client)));
  return store;
}

const noSubscription = () => () => {};
const none = () => NONE;

/**
 * The provider's connection: 'connecting' | 'connected' | 'disconnected', and
 * the client's last error (a refused token, a revocation, the gateway out of
 * reach), cleared when it connects again.
 *
 * @example
 * const { state, error } = useConnectionState();
 * return <span data-state={state}>{error ? error.message : state}</span>;
 */
export function useConnectionState(): ConnectionHookState {
  const client = useClient();
  const store = client === null ? undefined : storeOf(client);
  // The server renders no connection, and hydration starts from what it rendered.
  return useSyncExternalStore(store?.subscribe ?? noSubscription, store?.getSnapshot ?? none, none);
}
