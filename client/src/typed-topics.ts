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
 * Nothing here exists at run time.
 */
import type { JsonObject } from '@topicgate/shared';
import type { Message } from './types.js';

/** The topic map of a client created without one: any key, any JSON object body. */
export type AnyTopics = { [template: string]: JsonObject };

/** `'a.b.c'` → `['a', 'b', 'c']`. */
type Words<S extends string> = S extends `${infer Head}.${infer Rest}` ? [Head, ...Words<Rest>] : [S];

/** A template word `{name}` is a parameter: one word, any value. */
type IsParam<W extends string> = W extends `{${string}}` ? true : false;

/** `*` and `#` only count as whole words; `a*` or an empty word makes the pattern invalid. */
type IsValidPatternWord<W extends string> = W extends ''
  ? false
  : W extends '*' | '#'
    ? true
    : W extends `${string}${'*' | '#'}${string}`
      ? false
      : true;

type WordMatches<P extends string, K extends string> =
  IsValidPatternWord<P> extends false
    ? false
    : P extends '*'
      ? true
      : IsParam<K> extends true
        ? true
        : P extends K
          ? true
          : false;

/**
 * Can the pattern words `P` match some key the template words `K` describe?
 * `#` first tries to match zero words, then swallows one and tries again.
 */
type MatchWords<P extends readonly string[], K extends readonly string[]> = P extends readonly [
  infer PH extends string,
  ...infer PR extends string[],
]
  ? PH extends '#'
    ? MatchWords<PR, K> extends true
      ? true
      : K extends readonly [string, ...infer KR extends string[]]
        ? MatchWords<P, KR>
        : false
    : K extends readonly [infer KH extends string, ...infer KR extends string[]]
      ? WordMatches<PH, KH> extends true
        ? MatchWords<PR, KR>
        : false
      : false
  : K extends readonly []
    ? true
    : false;

/** The templates of `T` (as string keys). */
export type TopicTemplate<T> = keyof T & string;

/**
 * The templates of `T` that pattern `P` can match. A pattern only known as
 * `string` (built at run time) may match any of them; a topic map with an
 * index signature (`AnyTopics`) matches everything.
 */
export type MatchingTopics<T, P extends string> = string extends TopicTemplate<T>
  ? string
  : string extends P
    ? TopicTemplate<T>
    : // Distributes over a union of patterns (several patterns for one live view).
      P extends string
      ? { [K in TopicTemplate<T>]: MatchWords<Words<P>, Words<K>> extends true ? K : never }[TopicTemplate<T>]
      : never;

/** The routing keys a template describes: `'builds.{id}.finished'` → `` `builds.${string}.finished` ``. */
export type TopicKey<Template extends string> = Template extends `${infer Head}.${infer Rest}`
  ? `${KeyWord<Head>}.${TopicKey<Rest>}`
  : KeyWord<Template>;
type KeyWord<W extends string> = IsParam<W> extends true ? string : W;

/**
 * What a handler of pattern `P` receives: one `Message` per matching
 * template, so that narrowing on `key` narrows `body`.
 */
export type TopicMessage<T, P extends string> = {
  [K in MatchingTopics<T, P>]: Message<TopicKey<K>, K extends keyof T ? T[K] : never>;
}[MatchingTopics<T, P>];

/** The union of body types pattern `P` can receive. */
export type TopicBody<T, P extends string> = TopicMessage<T, P>['body'];

/**
 * The error shown when a pattern matches no declared topic (a typo, or a
 * topic missing from the map). It is a string type so the compiler prints it.
 */
export type NoTopicMatches = 'error: this pattern matches no topic declared in the topic map';

/**
 * `P` when it can match a declared topic, otherwise `NoTopicMatches`; checked
 * for each member of a union, so one bad pattern among several is caught.
 */
export type CheckedPattern<T, P extends string> = P extends string
  ? [MatchingTopics<T, P>] extends [never]
    ? NoTopicMatches
    : P
  : never;
