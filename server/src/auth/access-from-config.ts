/**
 * Builds the gateway's access control from configuration: JWT verification
 * plus pattern containment, or — only when explicitly asked for — none; and
 * the revocation check every handshake and refresh goes through.
 */
import type { TokenVerifierSettings } from '../config.js';
import type { Access } from '../gateway/access.js';
import type { Logger } from '../log.js';
import { ALLOW_ALL, authorizePattern } from './authorizer.js';
import type { Revocations } from './revocations.js';
import { AuthError, createTokenVerifier } from './token-verifier.js';

/** `jwt === null` means TOPICGATE_INSECURE_NO_AUTH=1 was set; the config loader refuses anything else without a key. */
/** TOPICGATE_INSECURE_NO_AUTH=1: anyone connects, every pattern is allowed. */
const insecureAccess: Access = {
  verify: async () => ({ sub: undefined, topics: ALLOW_ALL, exp: undefined }),
  authorize: () => ({ ok: true }),
};

export function createAccess(jwt: TokenVerifierSettings | null, log: Logger): Access {
  if (jwt === null) {
    log.warn(
      'AUTHENTICATION IS OFF (TOPICGATE_INSECURE_NO_AUTH=1): anyone who can reach this port may subscribe to every topic. ' +
        'Development only; set TOPICGATE_JWT_SECRET, TOPICGATE_JWT_PUBLIC_KEY or TOPICGATE_JWT_JWKS_URL for anything else.',
    );
    return insecureAccess;
  }
  const verifier = createTokenVerifier({ ...jwt, log });
  void verifier.prefetch(); // a JWKS is fetched at start; failures are logged and retried on demand
  return {
    verify: (token) => verifier.verify(token),
    authorize: (principal, pattern) => authorizePattern(pattern, principal.topics),
  };
}

/** `access`, refusing the tokens `revocations` revoked: at the handshake and at every refresh alike. */
export function withRevocations(access: Access, revocations: Revocations): Access {
  return {
    verify: async (token) => {
      const principal = await access.verify(token);
      const refusal = revocations.refusal(principal.sub, principal.iat);
      if (refusal !== null) throw new AuthError(refusal);
      return principal;
    },
    authorize: (principal, pattern) => access.authorize(principal, pattern),
  };
}
