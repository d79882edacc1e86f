/**
 * The page's one client, made when the page starts (never during a render:
 * StrictMode renders twice, and a client is a socket). The demo is its own
 * identity provider: GET /api/demo-token mints tokens, all under one session,
 * because the gateway refuses a refreshed token with another `sub`.
 *
 * `?token=JWT` uses that token as is (never renewed); `?ttl=N` asks for
 * N-second tokens, which the SDK renews as they expire.
 */
import { createClient, type Client } from '@topicgate/client';
import type { Topics } from './topics.js';

export const params = new URLSearchParams(location.search);
const session = Math.random().toString(36).slice(2, 12);

async function demoToken(): Promise<string> {
  const query = new URLSearchParams({ session });
  const ttl = params.get('ttl');
  if (ttl !== null) query.set('ttl', ttl);
  const response = await fetch(`/api/demo-token?${query}`);
  if (!response.ok) throw new Error(`GET /api/demo-token answered HTTP ${response.status}`);
  return ((await response.json()) as { token: string }).token;
}

export function connect(): Client<Topics> {
  const token = params.get('token');
  // The gateway is reached through this page's origin (see vite.config.ts).
  return createClient<Topics>({ url: location.origin, ...(token !== null ? { token } : { getToken: demoToken }) });
}

/** `?token=` and `?ttl=` follow the reader from one page to the other. */
export function carriedParams(): URLSearchParams {
  const carried = new URLSearchParams();
  for (const name of ['token', 'ttl']) {
    const value = params.get(name);
    if (value !== null) carried.set(name, value);
  }
  return carried;
}
