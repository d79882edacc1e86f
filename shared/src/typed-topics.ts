/**
 * An application's topic map, typed once for both ends: the browser SDK
 * (`@topicgate/client`) types what a pattern can receive, the publisher
 * (`@topicgate/publisher`) types what a key must carry. Rename a field in the
 * map and both stop compiling.
 *
 * The map declares key templates mapped to body types, where `{name}` stands
 * for exactly one word:
 *
 *   interface Topics {
 *     'builds.{id}.finished': BuildFinished;
 *     'logs.{id}.append': LogLines;
 *   }
 *
 * Patterns are evaluated with RabbitMQ's topic semantics (`*` one word, `#`
 * zero or more), word by word, the way `topicMatches` does at run time.
 *
 * Nothing here exists at run time.
 */
import type { JsonObject } from './json.js';

/** The topic map of a client or publisher created without one: any key, any JSON object body. */
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

// ---------------------------------------------------------------------------
// The publishing end: from a concrete key to the body it must carry.

/** Every routing key the map declares: `` `builds.${string}.finished` | `logs.${string}.append` | … ``. */
export type TopicKeys<T> = { [K in TopicTemplate<T>]: TopicKey<K> }[TopicTemplate<T>];

/**
 * The templates a concrete key belongs to: `'builds.42.finished'` →
 * `'builds.{id}.finished'`. Usually one; a key that fits several templates
 * (`'builds.{id}.finished'` and `'builds.{id}.{event}'`) belongs to each.
 */
export type KeyTopics<T, K extends string> = {
  // `${string}` also matches dots: the word count keeps 'builds.1.steps.2.started' out of 'builds.{id}.started'.
  [Template in TopicTemplate<T>]: K extends TopicKey<Template> ? (Words<K>['length'] extends Words<Template>['length'] ? Template : never) : never;
}[TopicTemplate<T>];

/** `A | B` → `A & B`. */
type Intersection<U> = (U extends unknown ? (u: U) => void : never) extends (i: infer I) => void ? I : never;

/**
 * What a message published under key `K` must carry: the body of its
 * template, or of every template it fits (their subscribers all expect
 * theirs). `never` for a key the map does not declare.
 */
export type KeyBody<T, K extends string> = [KeyTopics<T, K>] extends [never]
  ? never
  : Intersection<{ [Template in KeyTopics<T, K>]: T[Template] }[KeyTopics<T, K>]>;

/** The parameter names of a template: `'builds.{id}.steps.{step}'` → `'id' | 'step'`. */
export type TopicParamName<Template extends string> = Template extends `${infer Head}.${infer Rest}`
  ? ParamName<Head> | TopicParamName<Rest>
  : ParamName<Template>;
type ParamName<W extends string> = W extends `{${infer Name}}` ? Name : never;

/** The values that fill a template's parameters; each becomes one word of the key. */
export type TopicParams<Template extends string> = { [Name in TopicParamName<Template>]: string | number };
