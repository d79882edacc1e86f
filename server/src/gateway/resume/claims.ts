/**
 * Resume claims (docs/protocol.md §15.2). A claim is the name of the
 * subscription's queue: `topicgate.r.<subject hash>.<pattern hash>.<random>`.
 * Nothing is stored to check one: the 128 random bits make it unguessable,
 * the subject hash binds it to the token's `sub` (a claim read off another
 * user's screen or log is useless to them), and the pattern hash ties it to
 * the pattern the client presents, which is authorized again at resume.
 * Gateways need no shared secret for this, only the broker.
 */
import { createHash, randomBytes } from 'node:crypto';

const PREFIX = 'topicgate.r.';
const CLAIM = /^topicgate\.r\.([0-9a-f]{16})\.([0-9a-f]{16})\.([A-Za-z0-9_-]{22})$/;

/** Queue names of resumable subscriptions start with this (for operators' policies and leak checks). */
export const RESUMABLE_QUEUE_PREFIX = PREFIX;

export function newClaim(sub: string | undefined, pattern: string): string {
  return `${PREFIX}${digest('sub', sub ?? '')}.${digest('pattern', pattern)}.${randomBytes(16).toString('base64url')}`;
}

/** True when `claim` is well formed and was made for this subject and this (canonical) pattern. */
export function claimMatches(claim: string, sub: string | undefined, pattern: string): boolean {
  const parts = CLAIM.exec(claim);
  return parts !== null && parts[1] === digest('sub', sub ?? '') && parts[2] === digest('pattern', pattern);
}

function digest(what: string, value: string): string {
  return createHash('sha256').update(`${what}\u0000${value}`).digest('hex').slice(0, 16);
}
