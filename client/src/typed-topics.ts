/**
 * Type-level topic matching: which declared topics can a pattern receive?
 *
 * An application declares its topics once, as key templates mapped to body
 * types, where `{name}` stands for exactly one word:
 *
 *   interface Topics {
 *     'builds.{id}.finished': BuildFinished;
 *     'logs.{id}.append': LogLines;
 *   }
 *
 * `createClient<Topics>(…).subscribe('builds.*.finished', (m) => …)` then
 * types `m` as the union of the messages of every template the pattern can
 * match, evaluating `*` and `#` with RabbitMQ's topic semantics, word by word,
 * the way `topicMatches` in `@topicgate/shared` does at run time. A pattern
 * that can match no declared topic is a compile error.
 *
 * The matching itself lives in `@topicgate/shared` (typed-topics.ts), so that
 * `@topicgate/publisher` types the publishing end with the same map; here is
 * only what needs the SDK's `Message`.
 *
 * Nothing here exists at run time.
 */
import type { MatchingTopics, TopicKey } from '@topicgate/shared';
import type { Message } from './types.js';

export type {
  AnyTopics,
  CheckedPattern,
  MatchingTopics,
  NoTopicMatches,
  TopicKey,
  TopicTemplate,
} from '@topicgate/shared';

/**
 * What a handler of pattern `P` receives: one `Message` per matching
 * template, so that narrowing on `key` narrows `body`.
 */
export type TopicMessage<T, P extends string> = {
  [K in MatchingTopics<T, P>]: Message<TopicKey<K>, K extends keyof T ? T[K] : never>;
}[MatchingTopics<T, P>];

/** The union of body types pattern `P` can receive. */
export type TopicBody<T, P extends string> = TopicMessage<T, P>['body'];

