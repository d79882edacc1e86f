/**
 * A live resource without versions: the application's transition check is
 * all that tells a reordered message from a newer one.
 */
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { LiveResource, type Message } from '../src/index.js';
import { FakeRest, FakeSource, Network, quiesce } from './fake-source.js';
import { ticks, until } from './helpers.js';
import { opArbitrary, runCommon, type Op } from './schedules.js';

interface Row {
  id: number;
  version: number;
  value: number;
}

const open: { close(): void }[] = [];
afterEach(() => {
  for (const o of open.splice(0)) o.close();
});

type State = { state: 'pending' } | { state: 'running'; step: number } | { state: 'finished'; result: string };
const rank = (s: State) => (s.state === 'pending' ? 0 : s.state === 'running' ? 1 + s.step : 1_000);
const isValidTransition = (prev: State, next: State) => rank(next) >= rank(prev);

type BuildOp = { t: 'advance'; result: boolean } | Op;

describe('live resource without versions', () => {
  it('ends equal to the build, with only a transition check to spot reordering', async () => {
    const buildOps: fc.Arbitrary<BuildOp> = fc.oneof(
      { arbitrary: fc.record({ t: fc.constant('advance' as const), result: fc.boolean() }), weight: 4 },
      { arbitrary: opArbitrary.filter((op) => !['create', 'update', 'delete'].includes(op.t)), weight: 8 },
    );
    await fc.assert(
      fc.asyncProperty(fc.array(buildOps, { maxLength: 60 }), async (ops) => {
        let build: State = { state: 'pending' };
        const source = new FakeSource<Message<string, State>>();
        const network = new Network(source);
        const rest = new FakeRest<void, State>(() => ({ ...build }));
        const resource = new LiveResource<State, Message<string, State>>({
          source,
          load: () => rest.handler(undefined, new AbortController().signal),
          isValidTransition,
          retryDelay: 1,
          retryDelayMax: 2,
        });
        resource.on('error', () => {});
        open.push(resource);
        source.ready();
        for (const op of ops) {
          if (op.t === 'advance') {
            if (build.state === 'finished') continue;
            build =
              build.state === 'pending'
                ? { state: 'running', step: 0 }
                : build.step < 5 && !op.result
                  ? { state: 'running', step: build.step + 1 }
                  : { state: 'finished', result: op.result ? 'success' : 'failure' };
            network.publish({ key: 'builds.1.changed', body: { ...build }, seq: 0 });
          } else await runCommon(op, network as Network<any>, rest as FakeRest<unknown, unknown>);
        }
        await quiesce(network as Network<unknown>, [rest], () => resource.status === 'live');
        expect(resource.value).toEqual(build);
      }),
      { numRuns: 250 },
    );
  });

  it('reloads on an invalid transition and drops stale held messages without reloading', async () => {
    let build: State = { state: 'running', step: 2 };
    const source = new FakeSource<Message<string, State>>();
    const rest = new FakeRest<void, State | null>(() => ({ ...build }));
    const resource = new LiveResource<State, Message<string, State>>({
      source,
      load: () => rest.handler(undefined, new AbortController().signal),
      isValidTransition,
    });
    open.push(resource);
    expect(resource.value).toBeUndefined();
    source.ready();
    source.push({ key: 'b', body: { state: 'running', step: 1 }, seq: 1 }); // older than the snapshot
    rest.respondAll();
    await ticks();
    expect(resource.value).toEqual({ state: 'running', step: 2 });
    expect(rest.calls).toBe(1);
    const reloads: string[] = [];
    resource.on('reload', (reason) => reloads.push(reason));
    source.push({ key: 'b', body: { state: 'pending' }, seq: 2 });
    expect(rest.calls).toBe(2);
    expect(reloads).toEqual(['invalid_transition']);
    build = { state: 'finished', result: 'success' };
    rest.respondAll();
    await ticks();
    expect(resource.value).toEqual(build);
  });

  it('is null when the resource does not exist, and appears with its first message', async () => {
    const source = new FakeSource<Message<string, Row>>();
    const rest = new FakeRest<void, Row | null>(() => null);
    const resource = new LiveResource<Row, Message<string, Row>>({
      source,
      load: () => rest.handler(undefined, new AbortController().signal),
    });
    open.push(resource);
    source.ready();
    rest.respondAll();
    await ticks();
    expect(resource.value).toBeNull();
    source.push({ key: 'rows.1.created', body: { id: 1, version: 1, value: 5 }, seq: 1 });
    await ticks();
    expect(resource.value).toEqual({ id: 1, version: 1, value: 5 });
  });
});

describe('live resource events', () => {
  it("passes on its collection's status, error and reload events", async () => {
    const source = new FakeSource<Message<string, Row>>();
    const rest = new FakeRest<void, Row | null>(() => ({ id: 1, version: 1, value: 1 }));
    const resource = new LiveResource<Row, Message<string, Row>>({
      source,
      load: () => rest.handler(undefined, new AbortController().signal),
      retryDelay: 1,
      retryDelayMax: 1,
    });
    open.push(resource);
    const events: string[] = [];
    resource.on('status', (status, previous) => events.push(`status ${previous}→${status}`));
    resource.on('error', (error) => events.push(`error ${error.code}`));
    resource.on('reload', (reason) => events.push(`reload ${reason}`));
    resource.on('change', (value) => events.push(`change ${JSON.stringify(value)}`));
    source.ready();
    rest.fail(0);
    await ticks(1);
    await until(() => rest.pending.length === 1, 'the retry');
    rest.respondAll();
    await ticks();
    resource.reload();
    expect(events).toEqual([
      'status subscribing→loading',
      'error load_failed',
      'status loading→live',
      'change {"id":1,"version":1,"value":1}',
      'reload requested',
      'status live→loading',
    ]);
  });
});
