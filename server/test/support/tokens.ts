/** Tokens the way an application's backend mints them, for gateways that check them. */
import { mintToken } from '../../src/auth/token-verifier.js';
import { uniqueName } from './broker.js';

/** The secret of gateways the kit starts with auth on (`withAuth`). */
export const TEST_SECRET = 'test-secret-that-is-long-enough-for-hs256';

export interface TestClaims {
  sub?: string;
  topics?: string[];
  /** Seconds from now until `exp`. */
  ttl?: number;
  issuer?: string;
  audience?: string;
}

/** A signed HS256 token; without `sub` a fresh subject, so per-subject limits of other tests never apply. */
export function mintTestToken(secret: string, claims: TestClaims = {}): string {
  return mintToken({
    secret,
    sub: claims.sub ?? uniqueName('user'),
    topics: claims.topics ?? ['#'],
    ttlSeconds: claims.ttl ?? 3600,
    ...(claims.issuer !== undefined && { issuer: claims.issuer }),
    ...(claims.audience !== undefined && { audience: claims.audience }),
  });
}
