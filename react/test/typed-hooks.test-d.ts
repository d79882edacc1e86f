/**
 * Type tests: checked by `tsc -b` (react/test/tsconfig.json), which fails on
 * any broken `expectTypeOf` and on any `@ts-expect-error` that no longer
 * finds an error. The hooks from `createTopicgateHooks<Topics>()` are typed
 * by the topic map as the SDK's client is. Nothing here runs.
 */
import { describe, expectTypeOf, test } from 'vitest';
import type { LogLines, Message, TopicgateError } from '@topicgate/client';
import { createTopicgateHooks, type LiveCollectionState, type LiveResourceState, type LogTailState } from '../src/index.js';

interface Build {
  id: number;
  version: number;
  state: 'running' | 'success' | 'failure';
}
interface BuildDeleted {
  id: number;
  version: number;
  deleted: true;
}
interface Topics {
  'builds.{id}.finished': Build;
  'builds.{id}.deleted': BuildDeleted;
  'logs.{id}.append': LogLines;
}

const { useLiveCollection, useLiveResource, useLogTail, useSubscription, useClient } = createTopicgateHooks<Topics>();
declare const loadBuilds: (signal: AbortSignal) => Promise<Build[]>;
declare const loadBuild: (signal: AbortSignal) => Promise<Build | null>;
declare const loadLines: () => Promise<LogLines>;

describe('typed hooks', () => {
  test('a subscription handler and its state get the body of the topics the pattern matches', () => {
    const state = useSubscription('builds.*.finished', (m) => {
      expectTypeOf(m.body).toEqualTypeOf<Build>();
      expectTypeOf(m.key).toEqualTypeOf<`builds.${string}.finished`>();
    });
    expectTypeOf(state.last).toEqualTypeOf<Message<`builds.${string}.finished`, Build> | undefined>();
    expectTypeOf(state.error).toEqualTypeOf<TopicgateError | undefined>();
  });

  test('a wrong body type is a compile error', () => {
    useSubscription('builds.*.finished', (m) => {
      // @ts-expect-error state is a string union, not a number
      const n: number = m.body.state;
      void n;
      // @ts-expect-error a Build has no `lines`
      void m.body.lines;
    });
    useSubscription('logs.*.append', (m) => {
      // @ts-expect-error log lines are strings
      const first: string[] = m.body.first;
      void first;
    });
  });

  test('a pattern that matches no declared topic is a compile error', () => {
    // @ts-expect-error 'build' is not 'builds'
    useSubscription('build.*.finished');
    // @ts-expect-error no topic under builds has four words
    useLiveCollection({ pattern: 'builds.*.*.x', load: loadBuilds });
  });

  test('a live collection returns items of the body type, and needs apply when bodies are not items', () => {
    const finished = useLiveCollection({ pattern: 'builds.*.finished', load: loadBuilds });
    expectTypeOf(finished).toEqualTypeOf<LiveCollectionState<Build>>();
    expectTypeOf(finished.items).toEqualTypeOf<readonly Build[]>();

    // @ts-expect-error deletions are not Builds: without apply the body would become the item
    useLiveCollection<'builds.*.*', Build>({ pattern: 'builds.*.*', load: loadBuilds });
    const all = useLiveCollection<'builds.*.*', Build>({
      pattern: 'builds.*.*',
      load: loadBuilds,
      apply: (_prev, m) => ('deleted' in m.body ? null : m.body),
    });
    expectTypeOf(all.items).toEqualTypeOf<readonly Build[]>();

    // @ts-expect-error load must resolve to items of the body type
    useLiveCollection({ pattern: 'builds.*.finished', load: async () => [{ id: 'x' }] as { id: string }[] });
  });

  test('a live resource is the item, undefined until loaded, null when absent', () => {
    const build = useLiveResource({ pattern: 'builds.42.finished', load: loadBuild });
    expectTypeOf(build).toEqualTypeOf<LiveResourceState<Build>>();
    expectTypeOf(build.value).toEqualTypeOf<Build | null | undefined>();
    // @ts-expect-error a log chunk is not a Build
    useLiveResource<'builds.42.finished', Build>({ pattern: 'builds.42.finished', load: loadLines });
  });

  test('a log tail gives lines', () => {
    const tail = useLogTail({ pattern: 'logs.42.append', load: loadLines });
    expectTypeOf(tail).toEqualTypeOf<LogTailState>();
    expectTypeOf(tail.lines).toEqualTypeOf<readonly string[]>();
    expectTypeOf(tail.loadEarlier).toEqualTypeOf<(count?: number) => Promise<number>>();
  });

  test('useClient is the client of the topic map', () => {
    const client = useClient();
    client?.subscribe('builds.*.deleted', (m) => expectTypeOf(m.body).toEqualTypeOf<BuildDeleted>());
  });
});
