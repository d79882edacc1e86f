/**
 * The client the hooks below a provider use. The application makes it (one per
 * page, with its topic map) and hands it over; the provider never creates,
 * connects or closes it, so a re-render or StrictMode cannot open a second socket.
 */
import { createContext, useContext, type ReactNode } from 'react';
import type { AnyTopics, Client } from '@topicgate/client';

/** undefined: no provider above; null: a provider without a client (on the server, or before sign-in). */
const ClientContext = createContext<Client<any> | null | undefined>(undefined);
ClientContext.displayName = 'TopicgateClient';

export interface TopicgateProviderProps {
  /**
   * The client the hooks below use; `null` while there is none (on the
   * server, where nothing must connect, or before the user signed in): the
   * hooks then stay in their initial state and subscribe once it is set.
   */
  client: Client<any> | null;
  children?: ReactNode;
}

/**
 * @example
 * const client = createClient<Topics>({ url: 'https://live.example.com', getToken });
 * createRoot(root).render(
 *   <TopicgateProvider client={client}>
 *     <App />
 *   </TopicgateProvider>,
 * );
 */
export function TopicgateProvider({ client, children }: TopicgateProviderProps): ReactNode {
  return <ClientContext.Provider value={client}>{children}</ClientContext.Provider>;
}

/**
 * The provider's client, or null when it has none.
 *
 * @throws Error outside a `TopicgateProvider`: a hook there could never receive anything.
 */
export function useClient<T extends object = AnyTopics>(): Client<T> | null {
  const client = useContext(ClientContext);
  if (client === undefined) throw new Error('topicgate hooks must be used inside a <TopicgateProvider client={…}>');
  return client as Client<T> | null;
}
