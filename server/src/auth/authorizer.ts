/**
 * May this connection subscribe to this pattern? A subscription is allowed only
 * if every routing key its pattern can match is matched by at least one of the
 * token's `topics` (docs/protocol.md §10.3): containment under topic semantics,
 * never a string prefix test. The gateway asks on `subscribe`, and again for every live
 * subscription after a `refresh`.
 */
import { checkCoverage } from './containment.js';

/**
 * The topics of a connection when authentication is off
 * (`TOPICGATE_INSECURE_NO_AUTH=1`, development only): every pattern is allowed.
 */
export const ALLOW_ALL: readonly string[] = Object.freeze(['#']);

export type Authorization = { ok: true } | { ok: false; message: string };

/** How many of the token's topics a refusal lists before summarising the rest. */
const LISTED_TOPICS = 5;

/**
 * Decides whether a token with `topics` may subscribe to `pattern`. On refusal,
 * `message` is meant for the client (the `forbidden` error) and names a key the
 * pattern could receive that the token does not allow.
 *
 * Precondition: `pattern` and `topics` are valid patterns (check `patternError`
 * first and answer `invalid_pattern`; the token verifier validates `topics`).
 *
 * @example
 * authorizePattern('builds.42.*', ['builds.#']); // { ok: true }
 * authorizePattern('builds.#', ['builds.*']);
 * // { ok: false, message: 'token does not allow "builds.#": it can match "builds", which none of the token\'s topics (builds.*) match' }
 */
export function authorizePattern(pattern: string, topics: readonly string[]): Authorization {
  if (topics.length === 0) {
    return { ok: false, message: `token does not allow "${pattern}": the token allows no topics` };
  }
  const coverage = checkCoverage(pattern, topics);
  switch (coverage.verdict) {
    case 'covered':
      return { ok: true };
    case 'uncovered': {
      const key = coverage.example === '' ? 'the empty routing key' : `"${coverage.example}"`;
      return {
        ok: false,
        message: `token does not allow "${pattern}": it can match ${key}, which none of the token's topics (${listTopics(topics)}) match`,
      };
    }
    case 'too_complex':
      return {
        ok: false,
        message: `token does not allow "${pattern}": comparing it with the token's topics (${listTopics(topics)}) is too complex; subscribe to a narrower pattern`,
      };
  }
}

function listTopics(topics: readonly string[]): string {
  const listed = topics.slice(0, LISTED_TOPICS).join(', ');
  const rest = topics.length - LISTED_TOPICS;
  return rest > 0 ? `${listed} and ${rest} more` : listed;
}
