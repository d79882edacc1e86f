/**
 * The types of the convention helpers: which templates of a topic map a
 * resource or a log appender may publish to, and what bodies they take.
 */
import type { TopicParamName, TopicTemplate } from '@topicgate/shared';

/** `T[K]` for a template `K` of `T`. */
export type BodyOf<T, K> = K extends keyof T ? T[K] : never;

/** Parameter values that identify one resource or log: `{ id: 42 }`. Each becomes one word of its keys. */
export type ResourceParams = Readonly<Record<string, string | number>>;

/**
 * The templates a resource identified by parameters `Names` can announce
 * changes on: every parameter filled by `Names`, and a body with a numeric
 * `version` (docs/protocol.md §11).
 */
export type ResourceTemplate<T, Names extends string> = {
  [K in TopicTemplate<T>]: [TopicParamName<K>] extends [Names] ? (T[K] extends { version: number } ? K : never) : never;
}[TopicTemplate<T>];

/** A resource's body as its helper takes it: `version` may be left out (the helper sets the next one) or given (the helper checks it). */
export type ResourceBody<B> = B extends unknown ? Omit<B, 'version'> & { version?: number } : never;

/** The templates whose body is a log append, `{ first, lines }` (plus any other fields). */
export type LogTemplate<T> = {
  [K in TopicTemplate<T>]: T[K] extends { first: number; lines: string[] } ? K : never;
}[TopicTemplate<T>];

/** What a log append carries besides `first` and `lines` (the demo: `build`); fixed for one appender. */
export type LogFields<B> = Omit<B, 'first' | 'lines'>;

/** The options of `logAppender`, with `fields` required when the body has fields besides `first` and `lines`. */
export type LogAppenderOptionsArg<B> = {} extends LogFields<B>
  ? [options?: LogAppenderOptions<LogFields<B>>]
  : [options: LogAppenderOptions<LogFields<B>> & { fields: LogFields<B> }];

export interface LogAppenderOptions<Fields> {
  /** The number the next line gets: the lines the log already has (e.g. after a restart). Default: 0. */
  first?: number;
  /** Fields every append carries besides `first` and `lines`. Default: none. */
  fields?: Fields;
}

export interface ResourceOptions {
  /** The version last published for this resource (from your database); the next change gets one more. Default: 0 (the first change is version 1). */
  version?: number;
}
