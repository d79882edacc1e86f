/**
 * The other end of typed-publish.test-d.ts: the same topic map in the
 * browser SDK. Code that still uses a field the map renamed fails to compile
 * here as it does at the publisher.
 */
import { describe, expectTypeOf, test } from 'vitest';
import type { Client } from '@topicgate/client';
import type { BuildFinished, Topics } from './topics.js';

declare const client: Client<Topics>;

describe('the same map in the SDK', () => {
  test('the subscriber reads what the publisher must send', () => {
    client.subscribe('builds.*.finished', (m) => {
      expectTypeOf(m.body).toEqualTypeOf<BuildFinished>();
      expectTypeOf(m.body.result).toEqualTypeOf<'success' | 'failure'>();
    });
  });

  test('a renamed field does not compile: the map says `result`, this code still says `outcome`', () => {
    client.subscribe('builds.*.finished', (m) => {
      // @ts-expect-error 'outcome' does not exist on BuildFinished
      void m.body.outcome;
    });
  });

  test('a handler expecting another body type does not compile', () => {
    const onFinished = (m: { body: { outcome: string } }) => m.body.outcome;
    // @ts-expect-error builds.*.finished delivers BuildFinished, which has no `outcome`
    client.subscribe('builds.*.finished', onFinished);
  });
});
