/**
 * Type tests of the publishing end: checked by `tsc -p publisher/test` (the
 * root `npm test` runs it), which fails on any broken `expectTypeOf` and on
 * any `@ts-expect-error` that no longer finds an error. The SDK side of the
 * same map is typed-subscribe.test-d.ts.
 */
import { describe, expectTypeOf, test } from 'vitest';
import { createPublisher, type KeyBody, type Publisher } from '../src/index.js';
import type { BuildFinished, LogChunk, Topics } from './topics.js';

declare const publisher: Publisher<Topics>;
declare const id: number;
declare const anyKey: string;

describe('publish(key, body)', () => {
  test('a key takes the body of its template', () => {
    expectTypeOf<KeyBody<Topics, 'builds.42.finished'>>().toEqualTypeOf<BuildFinished>();
    expectTypeOf<KeyBody<Topics, `logs.${number}.append`>>().toEqualTypeOf<LogChunk>();
    void publisher.publish('builds.42.finished', { id: 42, version: 3, state: 'finished', result: 'success' });
    void publisher.publish(`builds.${id}.started`, { id, version: 1, state: 'running' });
    void publisher.publish(`builds.${id}.steps.2.started`, { build: id, step: 2 });
  });

  test('a body of the wrong type does not compile', () => {
    // @ts-expect-error result is 'success' | 'failure', not a number
    void publisher.publish('builds.42.finished', { id: 42, version: 3, state: 'finished', result: 1 });
    // @ts-expect-error a BuildStarted is not what builds.*.finished carries
    void publisher.publish('builds.42.finished', { id: 42, version: 1, state: 'running' });
    // @ts-expect-error lines are strings
    void publisher.publish('logs.42.append', { build: 42, first: 0, lines: [1, 2] });
  });

  test('a renamed field does not compile: the map says `result`, this code still says `outcome`', () => {
    // @ts-expect-error 'outcome' does not exist in BuildFinished (and `result` is missing)
    void publisher.publish('builds.42.finished', { id: 42, version: 3, state: 'finished', outcome: 'success' });
  });

  test('a key the map does not declare does not compile, nor one only known as string', () => {
    // @ts-expect-error no template 'builds.{id}.done'
    void publisher.publish('builds.42.done', { id: 42 });
    // @ts-expect-error too many words for 'builds.{id}.finished'
    void publisher.publish('builds.42.x.finished', { id: 42, version: 3, state: 'finished', result: 'success' });
    // @ts-expect-error a key built at run time cannot be checked: build it from a template
    void publisher.publish(anyKey, { id: 42 });
  });

  test('without a topic map, any key and any JSON object', () => {
    const untyped = createPublisher({ urls: 'amqp://localhost' });
    void untyped.publish(anyKey, { anything: [1, 'two'], at: new Date() });
    expectTypeOf(untyped.publish).returns.toEqualTypeOf<Promise<void>>();
  });
});

describe('resource(params)', () => {
  const build = publisher.resource({ id: 42 });

  test('announces on the templates its parameters fill, bodies typed, version optional', () => {
    void build.update('builds.{id}.started', { id: 42, state: 'running' });
    void build.update('builds.{id}.finished', { id: 42, version: 2, state: 'finished', result: 'failure' });
    void build.delete('builds.{id}.deleted', { id: 42, deleted: true });
    expectTypeOf(build.version).toBeNumber();
  });

  test('refuses wrong bodies, renamed fields, bodies without a version and templates it cannot fill', () => {
    // @ts-expect-error state of a started build is 'running'
    void build.update('builds.{id}.started', { id: 42, state: 'finished' });
    // @ts-expect-error renamed field: 'outcome' is not in BuildFinished
    void build.update('builds.{id}.finished', { id: 42, state: 'finished', outcome: 'success' });
    // @ts-expect-error a log chunk has no version: it is not a resource
    void build.update('logs.{id}.append', { build: 42, first: 0, lines: [] });
    // @ts-expect-error {step} is not among the resource's parameters
    void build.update('builds.{id}.steps.{step}.started', { build: 42, step: 1 });
  });
});

describe('logAppender(template, params, options)', () => {
  test('takes log templates, with the fields their bodies carry besides first and lines', () => {
    const log = publisher.logAppender('logs.{id}.append', { id: 42 }, { fields: { build: 42 } });
    void log.append(['a', 'b']);
    // @ts-expect-error LogChunk also carries `build`: fields are required
    publisher.logAppender('logs.{id}.append', { id: 42 });
    // @ts-expect-error `build` is a number
    publisher.logAppender('logs.{id}.append', { id: 42 }, { fields: { build: '42' } });
    // @ts-expect-error not a log template: its body is not { first, lines }
    publisher.logAppender('builds.{id}.started', { id: 42 });
    // @ts-expect-error the template's parameter is `id`
    publisher.logAppender('logs.{id}.append', { build: 42 }, { fields: { build: 42 } });
  });
});
