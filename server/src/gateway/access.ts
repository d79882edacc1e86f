/**
 * Who may connect and what they may subscribe to, as the gateway sees it.
 * The JWT details live in `auth/`; this is the narrow interface the socket
 * layer needs. (Auth off, for development, is decided in auth/access-from-config.ts.)
 */
import type { Authorization } from '../auth/authorizer.js';

export type { Authorization };

export interface Principal {
  /** The token's `sub`, for logs and per-subject limits. */
  sub: string | undefined;
  /** Patterns the holder may receive. */
  topics: readonly string[];
  /** Epoch seconds after which the connection must refresh or be dropped; undefined: never. */
  exp: number | undefined;
  /** When the token was issued (epoch seconds), if it says: revocations refuse tokens issued before them. */
  iat?: number | undefined;
}

export interface Access {
  /**
   * Verifies a handshake or refresh token; rejects with an `Error` whose
   * message says why it was refused. Asynchronous: a key may have to be
   * fetched (JWKS).
   */
  verify(token: unknown): Promise<Principal>;
  /** Whether `principal` may receive every key `pattern` can match. */
  authorize(principal: Principal, pattern: string): Authorization;
}
