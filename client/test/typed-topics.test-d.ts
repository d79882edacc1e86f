/**
 * Type tests: checked by `tsc -b` (client/test/tsconfig.json), which fails
 * on any broken `expectTypeOf` and on any `@ts-expect-error` that no longer
 * finds an error.
 */
import type { JsonObject } from '@topicgate/shared';
import { describe, expectTypeOf, test } from 'vitest';
import {
  createClient,
  type Client,
  type LiveCollection,
  type LogTail,
  type MatchingTopics,
  type Message,
  type Subscription,
  type TopicBody,
  type TopicKey,
  type TopicMessage,
} from '../src/index.js';

interface BuildStarted {
  id: number;
  version: number;
  state: 'running';
}
interface BuildFinished {
  id: number;
  version: number;
  state: 'finished';
  result: 'success' | 'failure';
}
interface StepStarted {
  build: number;
  step: number;
}
interface LogLines {
  first: number;
  lines: string[];
}

interface Topics {
  'builds.{id}.started': BuildStarted;
  'builds.{id}.finished': BuildFinished;
  'builds.{id}.steps.{step}.started': StepStarted;
  'logs.{id}.append': LogLines;
}

declare const client: Client<Topics>;

describe('topic templates', () => {
  test('a template becomes the keys it describes', () => {
    expectTypeOf<TopicKey<'builds.{id}.finished'>>().toEqualTypeOf<`builds.${string}.finished`>();
    expectTypeOf<TopicKey<'builds.{id}.steps.{step}.started'>>().toEqualTypeOf<`builds.${string}.steps.${string}.started`>();
    expectTypeOf<TopicKey<'audit'>>().toEqualTypeOf<'audit'>();
  });

  test('`*` matches exactly one word, literal words must be equal', () => {
    expectTypeOf<MatchingTopics<Topics, 'builds.*.finished'>>().toEqualTypeOf<'builds.{id}.finished'>();
    expectTypeOf<MatchingTopics<Topics, 'builds.42.*'>>().toEqualTypeOf<'builds.{id}.started' | 'builds.{id}.finished'>();
    expectTypeOf<MatchingTopics<Topics, '*.*.append'>>().toEqualTypeOf<'logs.{id}.append'>();
  });

  test('`#` matches zero or more words', () => {
    expectTypeOf<MatchingTopics<Topics, 'builds.#'>>().toEqualTypeOf<
      'builds.{id}.started' | 'builds.{id}.finished' | 'builds.{id}.steps.{step}.started'
    >();
    expectTypeOf<MatchingTopics<Topics, '#.started'>>().toEqualTypeOf<
      'builds.{id}.started' | 'builds.{id}.steps.{step}.started'
    >();
    expectTypeOf<MatchingTopics<Topics, 'builds.7.#.started'>>().toEqualTypeOf<
      'builds.{id}.started' | 'builds.{id}.steps.{step}.started'
    >();
    expectTypeOf<MatchingTopics<Topics, '#'>>().toEqualTypeOf<keyof Topics>();
  });

  test('a pattern with too many or too few words matches nothing', () => {
    expectTypeOf<MatchingTopics<Topics, 'builds.*'>>().toBeNever();
    expectTypeOf<MatchingTopics<Topics, 'builds.*.finished.x'>>().toBeNever();
    expectTypeOf<MatchingTopics<Topics, 'logs.*.*.append'>>().toBeNever();
  });

  test('a pattern only known at run time may match every topic', () => {
    expectTypeOf<MatchingTopics<Topics, string>>().toEqualTypeOf<keyof Topics>();
  });

  test('the body type is the union over the matching templates', () => {
    expectTypeOf<TopicBody<Topics, 'builds.*.*'>>().toEqualTypeOf<BuildStarted | BuildFinished>();
    expectTypeOf<TopicBody<Topics, 'logs.#'>>().toEqualTypeOf<LogLines>();
  });
});

describe('subscribe', () => {
  test('the handler receives the bodies of every topic the pattern can match, with the concrete key', () => {
    const sub = client.subscribe('builds.*.*', (message) => {
      expectTypeOf(message.body).toEqualTypeOf<BuildStarted | BuildFinished>();
      expectTypeOf(message.key).toEqualTypeOf<`builds.${string}.started` | `builds.${string}.finished`>();
      expectTypeOf(message.seq).toBeNumber();
      if (message.body.state === 'finished') expectTypeOf(message.body.result).toEqualTypeOf<'success' | 'failure'>();
    });
    expectTypeOf(sub).toEqualTypeOf<Subscription<TopicMessage<Topics, 'builds.*.*'>>>();
    expectTypeOf(sub.unsubscribe).toEqualTypeOf<() => void>();
  });

  test('comparing the key with a literal key narrows the body', () => {
    client.subscribe('builds.#', (message) => {
      if (message.key === 'builds.1.finished') expectTypeOf(message.body).toEqualTypeOf<BuildFinished>();
    });
  });

  test('isTopic narrows a message to one template', () => {
    client.subscribe('builds.#', (message) => {
      if (client.isTopic(message, 'builds.{id}.started')) {
        expectTypeOf(message.body).toEqualTypeOf<BuildStarted>();
      } else if (client.isTopic(message, 'builds.{id}.steps.{step}.started')) {
        expectTypeOf(message.body).toEqualTypeOf<StepStarted>();
      }
      // @ts-expect-error not a declared template
      client.isTopic(message, 'builds.{id}.done');
    });
  });

  test('a single-topic pattern gives that topic exactly', () => {
    client.subscribe('logs.7.append', (message) => {
      expectTypeOf(message).toEqualTypeOf<Message<`logs.${string}.append`, LogLines>>();
    });
  });

  test('a handler declared with the wrong body type is rejected', () => {
    const onLog = (message: Message<string, LogLines>) => message.body.lines;
    // @ts-expect-error builds.*.finished delivers BuildFinished, not LogLines
    client.subscribe('builds.*.finished', onLog);

    const onFinished = (message: Message<string, BuildFinished>) => message.body.result;
    client.subscribe('builds.*.finished', onFinished);
    // @ts-expect-error builds.*.* may also deliver BuildStarted, which has no result
    client.subscribe('builds.*.*', onFinished);
  });

  test('using a field that not every matching body has is rejected', () => {
    client.subscribe('builds.*.*', (message) => {
      // @ts-expect-error `result` exists on BuildFinished only
      void message.body.result;
    });
  });

  test('a pattern that matches no declared topic is rejected', () => {
    // @ts-expect-error typo: "biulds"
    client.subscribe('biulds.*.finished', () => {});
    // @ts-expect-error `*` is one word: builds.{id}.finished has three
    client.subscribe('builds.*', () => {});
    // @ts-expect-error wildcards stand alone as words
    client.subscribe('builds.4*.finished', () => {});
  });

  test('a pattern built at run time is accepted and typed with every topic', () => {
    const pattern: string = ['builds', '*', 'finished'].join('.');
    client.subscribe(pattern, (message) => {
      expectTypeOf(message.body).toEqualTypeOf<BuildStarted | BuildFinished | StepStarted | LogLines>();
    });
  });

  test('a client without a topic map takes any pattern and gives JSON objects', () => {
    const untyped = createClient({ url: 'http://x' });
    untyped.subscribe('anything.#', (message) => {
      expectTypeOf(message.key).toBeString();
      expectTypeOf(message.body).toEqualTypeOf<JsonObject>();
    });
  });
});

describe('live building blocks', () => {
  test('a live collection of the bodies needs no apply', () => {
    const builds = client.liveCollection({
      pattern: 'builds.*.*',
      load: async () => [] as (BuildStarted | BuildFinished)[],
    });
    expectTypeOf(builds.items).toEqualTypeOf<readonly (BuildStarted | BuildFinished)[]>();
  });

  test('a live collection of another item type requires apply', () => {
    interface Row {
      id: number;
      version: number;
      label: string;
    }
    // @ts-expect-error the bodies are not Rows: an apply is needed
    client.liveCollection({ pattern: 'builds.*.*', load: async (): Promise<Row[]> => [] });

    const rows = client.liveCollection({
      pattern: ['builds.*.started', 'builds.*.finished'],
      load: async (): Promise<Row[]> => [],
      apply: (prev, message) => {
        expectTypeOf(message.body).toEqualTypeOf<BuildStarted | BuildFinished>();
        return { id: message.body.id, version: message.body.version, label: prev?.label ?? message.body.state };
      },
    });
    expectTypeOf(rows).toEqualTypeOf<LiveCollection<Row, TopicMessage<Topics, 'builds.*.started' | 'builds.*.finished'>>>();
  });

  test('one bad pattern among several is rejected', () => {
    client.liveCollection({
      // @ts-expect-error builds.*.done is not a declared topic
      pattern: ['builds.*.started', 'builds.*.done'],
      load: async () => [] as BuildStarted[],
    });
  });

  test('a log tail is typed by its pattern', () => {
    const tail = client.logTail({
      pattern: 'logs.7.append',
      load: async () => ({ first: 0, lines: [] }),
    });
    expectTypeOf(tail).toEqualTypeOf<LogTail<Message<`logs.${string}.append`, LogLines>>>();
    expectTypeOf(tail.lines).toEqualTypeOf<readonly string[]>();
  });

  test('a live resource is undefined until loaded and null when absent', () => {
    const build = client.liveResource({
      pattern: 'builds.42.*',
      load: async (): Promise<BuildStarted | BuildFinished | null> => null,
    });
    expectTypeOf(build.value).toEqualTypeOf<BuildStarted | BuildFinished | null | undefined>();
  });
});
